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
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
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
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
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
  hbd version`)
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
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
