// Package metrics serves /metrics in the Prometheus text format. Values are
// read at scrape time from the daemon's services through the families the
// daemon registers, so no service imports this package and nothing is
// counted twice.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Family is one metric name with its labels, read by Collect at scrape time.
type Family struct {
	Name    string
	Help    string
	Counter bool // a counter; otherwise a gauge
	Labels  []string
	// Collect emits the current values; it is called once per scrape and
	// must not block.
	Collect func(emit func(value float64, labelValues ...string))
}

// Registry holds the families and serves them.
type Registry struct {
	mu       sync.RWMutex
	families []familyDesc
	reg      *prometheus.Registry
}

type familyDesc struct {
	Family
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), r)
	return r
}

// Add registers families. Names must be unique.
func (r *Registry) Add(fams ...Family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fams {
		typ := prometheus.GaugeValue
		if f.Counter {
			typ = prometheus.CounterValue
		}
		r.families = append(r.families, familyDesc{
			Family: f,
			desc:   prometheus.NewDesc(f.Name, f.Help, f.Labels, nil),
			typ:    typ,
		})
	}
}

// Describe implements prometheus.Collector. The registry is unchecked: the
// families can grow after registration.
func (r *Registry) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.RLock()
	fams := append([]familyDesc(nil), r.families...)
	r.mu.RUnlock()
	for _, f := range fams {
		f.Collect(func(v float64, lv ...string) {
			m, err := prometheus.NewConstMetric(f.desc, f.typ, v, lv...)
			if err == nil {
				ch <- m
			}
		})
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Lookup returns the registered family called name (not the Go runtime
// and process collectors'), for tests and tools that check queries
// against what /metrics exports.
func (r *Registry) Lookup(name string) (Family, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, f := range r.families {
		if f.Name == name {
			return f.Family, true
		}
	}
	return Family{}, false
}
