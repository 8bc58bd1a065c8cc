package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// perHostFamilies are /metrics families with a series per host (or per
// alert); they are left out of the figures.
var perHostFamilies = map[string]bool{
	"hbd_host_up":                    true,
	"hbd_connection_latency_seconds": true,
	"hbd_alert_level":                true,
}

// ScrapeMetrics reads the daemon's hbd_* series (without the per-host
// families), keyed by name and labels as exposed.
func ScrapeMetrics(ctx context.Context, client *http.Client, base, token string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "hbd_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		key := line[:i]
		name, _, _ := strings.Cut(key, "{")
		if perHostFamilies[name] {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[key] = v
	}
	return out, sc.Err()
}

// metricDelta is what a phase did: for counters (…_total) the increase
// from before to after, for gauges the value after.
func metricDelta(before, after map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for k, v := range after {
		name, _, _ := strings.Cut(k, "{")
		if strings.HasSuffix(name, "_total") {
			v -= before[k]
		}
		out[k] = v
	}
	return out
}
