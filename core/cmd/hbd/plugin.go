package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hbdmon/hbd/core/pluginhost"
	"github.com/hbdmon/hbd/sdk"
)

// pluginHelp is the -h text of "hbd plugin".
const pluginHelp = `usage: hbd plugin inspect [-json] [-timeout D] FILE

Starts the notifier plugin binary FILE the way the daemon does (same
handshake, minimal environment), prints the channel type it reports and
its fields, and stops it. No daemon, config or plugins_dir is needed: use
it on a freshly built binary before installing it. If the binary does not
start, the first useful line of why (the handshake error, a panic it
printed) is shown and the exit status is 1.

  -json       print the schema as JSON (as GET /api/0/notification_channel_types)
  -timeout D  bound of the start and the schema call (default 15s)

examples:
  hbd plugin inspect ./hbd-notifier-matrix
  hbd plugin inspect -json /var/lib/hbd/plugins/hbd-notifier-webhook
`

// pluginCmd runs "hbd plugin SUBCOMMAND".
func pluginCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "inspect" {
		fmt.Fprint(stderr, pluginHelp)
		return 2
	}
	fs := flag.NewFlagSet("plugin inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the schema as JSON")
	timeout := fs.Duration("timeout", pluginhost.DefaultStartTimeout, "bound of the start and the schema call")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fmt.Fprint(stderr, pluginHelp)
		return 2
	}
	file := fs.Arg(0)
	res, err := pluginhost.Inspect(context.Background(), file, *timeout)
	if err != nil && res.Schema.Type == "" {
		fmt.Fprintf(stderr, "hbd: plugin inspect %s: %v\n", file, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			sdk.Schema
			Protocol int `json:"protocol"`
		}{res.Schema, res.Protocol})
	} else {
		printSchema(stdout, file, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hbd: plugin inspect %s: %v\n", file, err)
		return 1
	}
	return 0
}

// printSchema writes the schema for people.
func printSchema(w io.Writer, file string, res pluginhost.Inspection) {
	s := res.Schema
	fmt.Fprintf(w, "%s: notifier type %q (%s), protocol %d, %d fields\n", file, s.Type, s.Label, res.Protocol, len(s.Fields))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tTYPE\tREQUIRED\tDEFAULT\tLABEL / HELP")
	for _, f := range s.Fields {
		req := ""
		if f.Required {
			req = "yes"
		}
		typ := f.Type
		if len(f.Options) > 0 {
			vals := make([]string, 0, len(f.Options))
			for _, o := range f.Options {
				vals = append(vals, o.Value)
			}
			typ += " (" + strings.Join(vals, "|") + ")"
		}
		label := f.Label
		if f.Help != "" {
			label += ": " + f.Help
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Key, typ, req, oneLine(f.Default), label)
	}
	tw.Flush()
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}
