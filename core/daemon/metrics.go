package daemon

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/metrics"
)

// metricsRoute serves /metrics to administrators, to anyone in open mode,
// and to scrapers presenting metrics_token as a bearer token.
func (d *Daemon) metricsRoute(reg *metrics.Registry) api.Route {
	h := echo.WrapHandler(reg.Handler())
	return api.Route{Method: http.MethodGet, Path: "/metrics", Access: api.Public, Handler: func(c echo.Context) error {
		tok := d.Config().MetricsToken
		bearer, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if tok != "" && ok && subtle.ConstantTimeCompare([]byte(bearer), tok.Bytes()) == 1 {
			return h(c)
		}
		if _, err := d.API.Deps().Guard.Check(c, api.Route{Method: http.MethodGet, Path: "/metrics", Access: api.Admin}); err != nil {
			return err
		}
		return h(c)
	}}
}

// storeFamilies exposes the store's counters.
func (d *Daemon) storeFamilies() []metrics.Family {
	st := d.Store
	return []metrics.Family{
		{Name: "hbd_samples_ingested_total", Help: "Samples committed to storage.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(st.Stats().SamplesAppended.Load())) }},
		{Name: "hbd_store_transactions_total", Help: "Committed SQLite write transactions.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(st.Stats().Transactions.Load())) }},
		{Name: "hbd_store_write_errors_total", Help: "Failed SQLite write transactions.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(st.Stats().WriteErrors.Load())) }},
		{Name: "hbd_store_write_queue", Help: "Writes waiting for the SQLite writer.",
			Collect: func(emit func(float64, ...string)) { emit(float64(st.QueueLen())) }},
		{Name: "hbd_store_memory_bytes", Help: "Bytes held by in-memory sample history.",
			Collect: func(emit func(float64, ...string)) { b, _ := st.MemoryStats(); emit(float64(b)) }},
		{Name: "hbd_hosts_known", Help: "Hosts configured or reported.",
			Collect: func(emit func(float64, ...string)) { emit(float64(len(d.API.HostNames()))) }},
	}
}
