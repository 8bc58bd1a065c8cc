package heartbeat

import (
	"reflect"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/metrics"
)

// collect returns family name's series of fams as "label,values=value".
func collect(t *testing.T, fams []metrics.Family, name string) map[string]float64 {
	t.Helper()
	for _, f := range fams {
		if f.Name != name {
			continue
		}
		out := map[string]float64{}
		f.Collect(func(v float64, lv ...string) {
			key := ""
			for i, l := range lv {
				if i > 0 {
					key += ","
				}
				key += f.Labels[i] + "=" + l
			}
			out[key] = v
		})
		return out
	}
	t.Fatalf("no family %s", name)
	return nil
}

// hbd_host_up has one 0/1 series per address family the host was heard
// on, plus family="any": up while some family is up (UP or DEGRADED).
func TestHostUpPerFamily(t *testing.T) {
	tr := NewTracker(TrackerConfig{Timeout: func(string) time.Duration { return 10 * time.Second }})
	t0 := time.Unix(1711234567, 0)
	beat(t, tr, "web01", IPv4, 1, 1, t0, time.Second)
	beat(t, tr, "web01", IPv6, 1, 1, t0, time.Second)
	beat(t, tr, "db01", IPv4, 1, 1, t0, time.Second)
	// ipv6 of web01 and ipv4 of db01 go silent; web01's ipv4 keeps beating.
	beat(t, tr, "web01", IPv4, 1, 2, t0.Add(20*time.Second), time.Second)
	tr.Sweep(t0.Add(20 * time.Second))
	fam := tr.Metrics()
	for _, f := range fam {
		if f.Name == "hbd_host_up" && !reflect.DeepEqual(f.Labels, []string{"host", "family"}) {
			t.Fatalf("hbd_host_up labels %v, want [host family]", f.Labels)
		}
	}
	got := collect(t, fam, "hbd_host_up")
	want := map[string]float64{
		"host=db01,family=any":   0,
		"host=db01,family=ipv4":  0,
		"host=web01,family=any":  1,
		"host=web01,family=ipv4": 1,
		"host=web01,family=ipv6": 0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hbd_host_up = %v, want %v", got, want)
	}
	for _, f := range fam {
		if f.Name == "hbd_connection_up" {
			t.Errorf("hbd_connection_up is still exported; hbd_host_up{family} replaces it")
		}
	}
}
