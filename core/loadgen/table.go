package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report for people: per phase, the rates,
// latencies, answers and drops, then the daemon's CPU and memory.
func (r *Report) WriteTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "hbd-load: %d hosts (%s), %s per timed phase, against %s\n", r.Hosts, strings.Join(r.Families, "+"), r.Duration, r.URL)
	lat := func(p Percentiles) string {
		return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f", p.P50, p.P90, p.P99, p.Max)
	}
	status := func(m map[string]uint64) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
		}
		return strings.Join(parts, " ")
	}
	for _, p := range r.Phases {
		fmt.Fprintf(w, "\n== phase %s (%.1f s)\n", p.Name, p.Seconds)
		fmt.Fprintln(w, "load\tconns\trate/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tanswers / drops")
		if h := p.Heartbeats; h != nil && h.Sent > 0 {
			fam := []string{}
			for _, k := range slices.Sorted(maps.Keys(h.ByFamily)) {
				fam = append(fam, fmt.Sprintf("%s %.0f/s", k, h.ByFamily[k]))
			}
			fmt.Fprintf(w, "heartbeats (rtt)\t%d\t%.0f\t%s\tsent %d acked %d missing %d bad %d stalls %d (%s)\n",
				h.Sockets, h.PerSec, lat(h.RTT), h.Sent, h.Acked, h.Missing, h.BadAcks, h.Stalls, strings.Join(fam, ", "))
		}
		if in := p.Ingest; in != nil && in.Requests > 0 {
			fmt.Fprintf(w, "POST %s (%d/batch)\t%d\t%.0f\t%s\t%s\n", "/api/0/ingest", in.BatchSamples, in.Conns, in.PerSec, lat(in.Latency), status(in.Status))
			fmt.Fprintf(w, "  samples\t\t%.0f\t\t\t\t\tsent %d accepted %d duplicates %d (target %.0f/s, behind %d)\n",
				in.SamplesPerSec, in.SamplesSent, in.SamplesAccepted, in.Duplicates, in.TargetSamplesPerSec, in.Behind)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Reads)) {
			e := p.Reads[name]
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s (%.0f B/answer)\n", name, e.Conns, e.PerSec, lat(e.Latency), status(e.Status), e.BytesPerAnswer)
		}
		if ws := p.WS; ws != nil {
			fmt.Fprintf(w, "ws delivery, baseline\t%d\t%.0f\t%s\thandshakes %s; %d frames, %.1f MB\n", ws.Connected, float64(ws.DeliveryBaseline.Count)/p.Seconds*2,
				lat(ws.DeliveryBaseline), status(ws.Handshake), ws.Frames, float64(ws.FrameBytes)/1e6)
			fmt.Fprintf(w, "ws delivery, %d stalled\t%d\t%.0f\t%s\tdropped: %d reading, %d of %d stalled %s\n", ws.Stalled, ws.Connected-ws.Stalled,
				float64(ws.DeliveryStalled.Count)/p.Seconds*2, lat(ws.DeliveryStalled), ws.DroppedReading, ws.DroppedStalled, ws.Stalled, status(ws.CloseReasons))
			if len(ws.StalledLastSample) > 0 {
				fmt.Fprintf(w, "  stalled clients dropped; newest sample they were sent, seconds after the stall: %v\n", ws.StalledLastSample)
			}
		}
		if d := p.Daemon; d != nil {
			fmt.Fprintf(w, "daemon (pid %d): %.2f CPU s (%.2f cores), RSS peak %.0f MiB, end %.0f MiB; hbd-load %.2f CPU s, whole machine %.2f CPU s\n",
				d.PID, d.CPUSeconds, d.CPUCores, d.RSSPeakMiB, d.RSSEndMiB, d.LoadgenCPUSeconds, d.MachineCPUSeconds)
			if h := p.Heartbeats; h != nil && p.Name == PhaseHeartbeat && h.Acked > 0 {
				fmt.Fprintf(w, "  %.2f µs daemon CPU per acked heartbeat\n", d.CPUSeconds/float64(h.Acked)*1e6)
			}
			if in := p.Ingest; in != nil && p.Name == PhaseIngest && in.SamplesAccepted > 0 {
				fmt.Fprintf(w, "  %.2f µs daemon CPU per accepted sample\n", d.CPUSeconds/float64(in.SamplesAccepted)*1e6)
			}
		}
		if m := p.DaemonMetrics; m != nil {
			var parts []string
			for _, k := range []string{"hbd_samples_ingested_total", "hbd_heartbeats_accepted_total", "hbd_store_write_errors_total", "hbd_ws_clients", "hbd_hosts_known"} {
				if v, ok := m[k]; ok {
					parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
				}
			}
			var drops float64
			for k, v := range m {
				if strings.HasPrefix(k, "hbd_heartbeats_dropped_total") {
					drops += v
				}
			}
			parts = append(parts, fmt.Sprintf("hbd_heartbeats_dropped_total %.0f", drops))
			fmt.Fprintf(w, "daemon /metrics: %s\n", strings.Join(parts, ", "))
		}
		for _, n := range p.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	return w.Flush()
}
