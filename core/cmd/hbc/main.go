// Command hbc is the hbd agent: it sends heartbeats to the daemon and
// delivers the samples of its plugins (see docs/AGENT.md).
//
//	hbc [-config FILE]        run until SIGTERM or SIGINT
//	hbc once [-config FILE]   print one round of every enabled plugin as JSON
//	hbc version               print the version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/agent"
	"github.com/hbdmon/hbd/core/heartbeat"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

const defaultConfig = "/etc/hbc/hbc.yaml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is hbc's command line; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-version", "--version":
			fmt.Fprintln(stdout, "hbc", version)
			return 0
		case "-h", "-help", "--help", "help":
			usage(stdout)
			return 0
		}
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "hbc", version)
		return 0
	case "run", "once":
	default:
		fmt.Fprintf(stderr, "hbc: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}

	fs := flag.NewFlagSet("hbc "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	configPath := fs.String("config", defaultConfig, "agent configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		usage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hbc: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	cfg, err := agent.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "hbc: %v\n", err)
		return 1
	}
	logger := agent.NewLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cmd == "once" {
		return once(ctx, cfg, logger, stdout)
	}
	if err := startHeartbeats(ctx, cfg, logger); err != nil {
		logger.Error("cannot start heartbeats", "error", err)
		return 1
	}
	if err := agent.New(cfg, logger).Run(ctx); err != nil {
		logger.Error("agent failed", "error", err)
		return 1
	}
	return 0
}

func once(ctx context.Context, cfg agent.Config, logger hclog.Logger, stdout io.Writer) int {
	out, err := agent.Once(ctx, cfg, logger)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(out); encErr != nil {
		logger.Error("cannot print plugin data", "error", encErr)
		return 1
	}
	if err != nil {
		logger.Error("not every plugin produced data", "error", err)
		return 1
	}
	return 0
}

// startHeartbeats starts one UDP heartbeat sender per daemon of
// cfg.HeartbeatTargets (server_ipv4 and server_ipv6, or the lists
// servers_ipv4 and servers_ipv6), every cfg.HeartbeatInterval, signed with
// the host key (or the enroll key); they stop when ctx ends. Every daemon
// gets its own stream (its own session and sequence numbers): UDP has no
// answer to fail over on, so each listed daemon hears from the host, and
// daemons that share replay state never see one datagram twice.
func startHeartbeats(ctx context.Context, cfg agent.Config, logger hclog.Logger) error {
	var clients []*heartbeat.Client
	for _, target := range cfg.HeartbeatTargets() {
		hc := heartbeat.ClientConfig{
			Host:     cfg.Host,
			Interval: cfg.HeartbeatInterval,
			Addr4:    target.IPv4,
			Addr6:    target.IPv6,
			Logger:   logger.Named("heartbeat"),
		}
		if cfg.EnrollKey != "" {
			hc.EnrollKey = cfg.EnrollKey.Bytes()
		} else {
			hc.Key = cfg.Key.Bytes()
		}
		c, err := heartbeat.NewClient(hc)
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		go c.Run(ctx)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage:
  hbc [-config FILE]        run the agent until SIGTERM or SIGINT
  hbc once [-config FILE]   print one round of every enabled plugin as JSON
  hbc version               print the version (also: hbc --version)

FILE defaults to %s; HBC_ environment variables override its keys.
See docs/AGENT.md.

examples:
  hbc -config /etc/hbc/hbc.yaml
  hbc once -config examples/hbc.yaml | jq .
  HBC_API_URL=https://hbd.example.net:50004 hbc
`, defaultConfig)
}
