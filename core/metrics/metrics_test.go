package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFamiliesAreScraped(t *testing.T) {
	r := New()
	n := 0.0
	r.Add(Family{Name: "hbd_hosts", Help: "Hosts by state.", Labels: []string{"state"}, Collect: func(emit func(float64, ...string)) {
		n++
		emit(n, "UP")
		emit(2, "DOWN")
	}})
	r.Add(Family{Name: "hbd_samples_total", Help: "Samples.", Counter: true, Collect: func(emit func(float64, ...string)) { emit(42) }})
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	for want := 1; want <= 2; want++ {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		for _, line := range []string{
			`hbd_hosts{state="UP"} ` + string(rune('0'+want)),
			`hbd_hosts{state="DOWN"} 2`,
			"# TYPE hbd_samples_total counter",
			"hbd_samples_total 42",
			"go_goroutines",
		} {
			if !strings.Contains(body, line) {
				t.Fatalf("scrape %d lacks %q:\n%s", want, line, body)
			}
		}
	}
}
