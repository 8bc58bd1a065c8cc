// Command hbd is the heartbeat and host-metrics monitor daemon.
//
//	hbd [serve] -config FILE     run the daemon
//	hbd check-config -config FILE
//	hbd hash-password            prompt for a password, print a bcrypt hash
//	hbd add-host NAME [-write]   add a watched host; print the agent's config
//	hbd backup -config FILE OUT  consistent copy of the live database
//	hbd restore -config FILE IN  put a backup back (daemon stopped)
//	hbd migrate-store -config FILE -to-dsn DSN  copy SQLite into PostgreSQL
//	hbd plugin inspect FILE      print a notifier plugin binary's schema
//	hbd version
//	hbd help [COMMAND]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/hbdmon/hbd/core/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return 0
		case "-version", "--version":
			fmt.Fprintln(stdout, "hbd", daemon.Version)
			return 0
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if help, ok := commandHelp[cmd]; ok && slices.ContainsFunc(args, isHelp) {
		fmt.Fprint(stdout, help)
		return 0
	}
	switch cmd {
	case "serve":
		path, ok := configFlag("serve", args, stderr)
		if !ok {
			return 2
		}
		d, err := daemon.New(context.Background(), path, daemon.Options{})
		if err != nil {
			fmt.Fprintln(stderr, "hbd:", err)
			return 1
		}
		if err := d.Run(context.Background()); err != nil {
			fmt.Fprintln(stderr, "hbd:", err)
			return 1
		}
		return 0
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	case "add-host":
		return addHost(args, stdout, stderr)
	case "backup":
		return backup(args, stdout, stderr)
	case "restore":
		return restore(args, stdout, stderr)
	case "migrate-store":
		return migrateStore(args, stdout, stderr)
	case "plugin":
		return pluginCmd(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hbd", daemon.Version)
		return 0
	case "help", "-h", "--help":
		if len(args) == 0 || args[0] == "help" {
			usage(stdout)
			return 0
		}
		if help, ok := commandHelp[args[0]]; ok {
			fmt.Fprint(stdout, help)
			return 0
		}
		cmd = args[0]
	}
	fmt.Fprintf(stderr, "hbd: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  hbd [serve] -config FILE       run the daemon
  hbd check-config -config FILE  validate a config file
  hbd hash-password              prompt for a password (or read stdin), print its bcrypt hash
  hbd add-host NAME [-write]     make a host key; print the watchhosts entry and the agent's hbc.yaml
  hbd backup [-config FILE] OUT  copy the live database to OUT
  hbd restore [-config FILE] IN  put a backup in place of the database (daemon stopped)
  hbd migrate-store [-config FILE] [-from DIR] [-to-dsn DSN]
                                 copy the SQLite database into an empty PostgreSQL one (docs/HA.md)
  hbd plugin inspect FILE        start a notifier plugin binary, print its schema
  hbd version                    print the version (also: hbd --version)

"hbd COMMAND -h" (or "hbd help COMMAND") shows a command's help with examples.
Documentation: docs/CONFIG.md, docs/HTTP_API.md, docs/SECURITY.md.`)
}

// commandHelp is each command's -h text.
var commandHelp = map[string]string{
	"plugin": pluginHelp,
	"serve": `usage: hbd [serve] [-config FILE]

Runs the daemon on FILE (default ./hbd.yaml): the HTTP API and dashboards,
the WebSocket feed and the UDP heartbeat listener. SIGHUP reloads the
file, SIGTERM stops cleanly. HBD_ environment variables override keys.

examples:
  hbd serve -config /etc/hbd/hbd.yaml
  HBD_HBD_PORT=50010 hbd -config examples/hbd.yaml
`,
	"check-config": `usage: hbd check-config [-config FILE]

Validates FILE (default ./hbd.yaml) as serve would, including the check
against the config the daemon last applied (a file cut short must not turn
authentication off), and prints a summary. Exit status 1 names the file,
the key and the problem.

example:
  hbd check-config -config /etc/hbd/hbd.yaml && systemctl reload hbd
`,
	"hash-password": `usage: hbd hash-password

On a terminal, asks for the password twice without echoing it. Otherwise
reads one password (at most 72 bytes) from the first line of standard
input. Prints its bcrypt hash for users.<name>.password_hash.

examples:
  hbd hash-password
  hbd hash-password < /run/secrets/alice-password
`,
	"add-host":      addHostHelp,
	"backup":        backupHelp,
	"restore":       restoreHelp,
	"migrate-store": migrateStoreHelp,
	"version": `usage: hbd version

Prints the version this binary was built as (also: hbd --version).

example:
  hbd version
`,
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, commandHelp[name]) }
	path := fs.String("config", "hbd.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hbd %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
}
