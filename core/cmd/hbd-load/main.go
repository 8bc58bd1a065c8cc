// Command hbd-load puts a simulated fleet's load on a running hbd and
// reports what the clients saw and what the daemon spent: heartbeats over
// IPv4 and IPv6, signed sample batches with the four built-in plugin
// shapes, readers on the main read endpoints and live feed clients, some
// of them stalled. See package loadgen for the phases.
//
//	hbd-load -url http://127.0.0.1:50004 -hb4 127.0.0.1:50003 -hb6 '[::1]:50003' \
//	    -enroll-key-file key -hosts 10000 -duration 60s -json bench-load.json
//
// The daemon needs enroll_key (the hosts register themselves with keys
// derived from it), max_dynamic_hosts of at least -hosts, and open mode or
// -token for the reads, the feed and /metrics.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hbdmon/hbd/core/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	d := loadgen.Defaults()
	fs := flag.NewFlagSet("hbd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := d
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:50004", "the daemon's HTTP base URL")
	fs.StringVar(&cfg.WSURL, "ws-url", "", "the live feed URL (default: -url's host, path /hbd)")
	fs.StringVar(&cfg.HB4, "hb4", "127.0.0.1:50003", "IPv4 heartbeat address (empty: none)")
	fs.StringVar(&cfg.HB6, "hb6", "[::1]:50003", "IPv6 heartbeat address (empty: none)")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for reads, the feed and /metrics (empty: open mode)")
	enroll := fs.String("enroll-key", "", "the daemon's enroll_key (or -enroll-key-file, or $HBD_LOAD_ENROLL_KEY)")
	enrollFile := fs.String("enroll-key-file", "", "file holding the daemon's enroll_key")
	fs.IntVar(&cfg.Hosts, "hosts", d.Hosts, "simulated hosts")
	fs.StringVar(&cfg.Prefix, "prefix", d.Prefix, "host name prefix (names are PREFIX-00000 ...)")
	fs.IntVar(&cfg.NonOKEvery, "non-ok-every", d.NonOKEvery, "every Nth host reports cpu_percent 97 (0: none)")
	phases := fs.String("phases", strings.Join(d.Phases, ","), "phases to run, in order: "+strings.Join(loadgen.AllPhases, ","))
	fs.DurationVar(&cfg.Duration, "duration", d.Duration, "length of each timed phase")
	fs.IntVar(&cfg.HBSockets, "hb-sockets", d.HBSockets, "UDP sockets per family")
	fs.IntVar(&cfg.HBWindow, "hb-window", d.HBWindow, "unacknowledged heartbeats per socket")
	fs.Float64Var(&cfg.HBRate, "hb-rate", d.HBRate, "heartbeats/s in the heartbeat phase (0: as fast as acks allow)")
	fs.IntVar(&cfg.IngestConns, "ingest-conns", d.IngestConns, "ingestion connections")
	fs.IntVar(&cfg.Batch, "batch", d.Batch, "samples per batch")
	fs.Float64Var(&cfg.IngestRate, "ingest-rate", d.IngestRate, "samples/s in the ingest phase (0: closed loop)")
	fs.Float64Var(&cfg.BackgroundRate, "background-rate", d.BackgroundRate, "samples/s during the read and ws phases")
	fs.IntVar(&cfg.PluginReaders, "plugins-conns", d.PluginReaders, "connections on GET /api/0/hosts/{h}/plugins")
	fs.IntVar(&cfg.SampleReaders, "samples-conns", d.SampleReaders, "connections on GET /api/0/hosts/{h}/plugins/{p}?limit=10")
	fs.IntVar(&cfg.AlertReaders, "alerts-conns", d.AlertReaders, "connections on GET /api/0/alerts")
	fs.StringVar(&cfg.AlertsQuery, "alerts-query", d.AlertsQuery, "query string of the alerts reads, e.g. ?limit=100")
	fs.IntVar(&cfg.WSClients, "ws-clients", d.WSClients, "live feed clients")
	fs.IntVar(&cfg.WSStalled, "ws-stalled", d.WSStalled, "feed clients that stop reading halfway through the ws phase")
	fs.IntVar(&cfg.WSSources, "ws-sources", d.WSSources, "loopback source addresses the feed clients are spread over (0: one)")
	fs.BoolVar(&cfg.WSPlain, "ws-plain", false, "feed clients take one frame per message (default: multi-message frames, ?batch=1, like the web UI)")
	fs.IntVar(&cfg.PID, "pid", 0, "the daemon's pid for /proc sampling (default: the process listening on -url's port)")
	jsonOut := fs.String("json", "", "write the figures as JSON to this file")
	quiet := fs.Bool("q", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Phases = strings.Split(*phases, ",")
	key := *enroll
	if *enrollFile != "" {
		b, err := os.ReadFile(*enrollFile)
		if err != nil {
			fmt.Fprintln(stderr, "hbd-load:", err)
			return 2
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		key = os.Getenv("HBD_LOAD_ENROLL_KEY")
	}
	cfg.EnrollKey = []byte(key)
	if !*quiet {
		cfg.Log = stderr
	}
	if cfg.PID == 0 {
		if u, err := url.Parse(cfg.URL); err == nil {
			if port, err := strconv.Atoi(u.Port()); err == nil {
				if pid, err := loadgen.PIDListening(port); err == nil {
					cfg.PID = pid
				} else {
					fmt.Fprintln(stderr, "hbd-load: no /proc figures:", err)
				}
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hbd-load:", err)
		return 2
	}
	rep.WriteTable(stdout)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "hbd-load:", err)
			return 1
		}
	}
	return 0
}
