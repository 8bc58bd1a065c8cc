// Command hbd is the heartbeat and host-metrics monitor daemon.
//
//	hbd [serve] -config FILE     run the daemon
//	hbd check-config -config FILE
//	hbd hash-password            read a password on stdin, print a bcrypt hash
//	hbd version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/store"
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
		path, ok := configFlag("check-config", args, stderr)
		if !ok {
			return 2
		}
		cfg, err := config.Load(path, nil)
		if err == nil {
			err = config.CheckAgainstState(cfg)
		}
		if err == nil && cfg.Store.Postgres() {
			err = checkStoreDSN(path, cfg)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "%s: warning: %s\n", path, w)
		}
		if cfg.OpenMode() {
			fmt.Fprintf(stdout, "%s: no users: hbd will run in OPEN MODE (every endpoint without a login)\n", path)
		}
		fmt.Fprintf(stdout, "%s: ok (%d watched hosts, %d users, %d channels)\n", path, len(cfg.Watchhosts), len(cfg.Users), len(cfg.Channels))
		return 0
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hbd", daemon.Version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "hbd: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  hbd [serve] -config FILE       run the daemon
  hbd check-config -config FILE  validate a config file
  hbd hash-password              read a password on stdin, print its bcrypt hash
  hbd version                    print the version (also: hbd --version)

"hbd COMMAND -h" shows a command's help with examples.
Documentation: docs/CONFIG.md, docs/HTTP_API.md, docs/SECURITY.md.`)
}

// commandHelp is each command's -h text.
var commandHelp = map[string]string{
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
	"hash-password": `usage: hbd hash-password < FILE

Reads one password (at most 72 bytes) from the first line of standard
input and prints its bcrypt hash for users.<name>.password_hash.

example:
  read -rs PW && printf '%s
' "$PW" | hbd hash-password
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

// maxPasswordBytes is bcrypt's input limit.
const maxPasswordBytes = 72

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "hbd hash-password: read stdin:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "hbd hash-password: empty password on stdin")
		return 1
	}
	if len(pw) > maxPasswordBytes {
		fmt.Fprintf(stderr, "hbd hash-password: password longer than %d bytes\n", maxPasswordBytes)
		return 1
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "hbd hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(h))
	return 0
}

// checkStoreDSN parses the PostgreSQL connection string without
// connecting; the message names the key, never the value.
func checkStoreDSN(path string, cfg *config.Config) error {
	dsn, _, err := cfg.Store.Connection()
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = path
		}
		return err
	}
	if err := store.CheckDSN(dsn.Reveal()); err != nil {
		key := "store.dsn"
		if cfg.Store.DSNFile != "" {
			key = "store.dsn_file"
		}
		return &config.Error{File: path, Key: key, Msg: strings.TrimPrefix(err.Error(), "store.dsn: ")}
	}
	return nil
}
