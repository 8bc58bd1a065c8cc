package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/daemon"
)

const addHostHelp = `usage: hbd add-host [-config FILE] [-write] [-server ADDR] NAME

Makes a fresh 32-byte key for host NAME and prints
  1. the watchhosts entry for the daemon's config, and
  2. a complete hbc.yaml for the agent on NAME.
-server is the name or address the agent reaches the daemon under
(default: hbd_host, or this machine's host name when hbd_host is empty or
a wildcard).

With -write the entry is added to FILE (default ./hbd.yaml) instead:
the new file is checked as serve would before it replaces the old one
(atomically; the old one is kept as FILE.bak), the running daemon is told
to reload (SIGHUP to the pid in data_dir/hbd.pid), and only the agent's
hbc.yaml goes to standard output, ready to pipe to the host.

examples:
  hbd add-host web01
  sudo hbd add-host -config /etc/hbd/hbd.yaml -write -server hbd.example.net web01 \
    | ssh web01 'sudo install -m 640 -g hbc /dev/stdin /etc/hbc/hbc.yaml && sudo systemctl enable --now hbc'
`

func addHost(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("add-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, addHostHelp) }
	path := fs.String("config", "hbd.yaml", "config file")
	write := fs.Bool("write", false, "add the entry to the config file and reload the daemon")
	server := fs.String("server", "", "name or address agents reach the daemon under")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hbd add-host: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if name == "" {
		fmt.Fprint(stderr, addHostHelp)
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hbd add-host: "+format+"\n", a...)
		return 1
	}
	if !config.ValidHostName(name) || !config.CanonicalHostName(name) {
		return fail("%q is not a host name (lower-case letters, digits, '-', '_' and '.')", name)
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		return fail("%v", err)
	}
	if _, ok := cfg.Watchhosts[name]; ok {
		return fail("%s: watchhosts.%s exists already", *path, name)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fail("generate a key: %v", err)
	}
	key := hex.EncodeToString(raw)
	addr := *server
	if addr == "" {
		addr = defaultServer(cfg)
		if ip, err := netip.ParseAddr(addr); err == nil && ip.IsLoopback() {
			fmt.Fprintf(stderr, "hbd add-host: note: hbd_host is %s, reachable from this machine only; pass -server for an agent elsewhere\n", addr)
		}
	}
	agentConf := agentConfig(cfg, name, key, addr)

	if !*write {
		fmt.Fprintf(stdout, "# 1. Add under watchhosts: in %s (or run again with -write), then reload hbd:\n", *path)
		fmt.Fprint(stdout, watchhostEntry(name, key, "  "))
		fmt.Fprintf(stdout, "\n# 2. On %s, as /etc/hbc/hbc.yaml (root:hbc, mode 0640):\n", name)
		fmt.Fprint(stdout, agentConf)
		return 0
	}
	if err := appendWatchhost(*path, name, key); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stderr, "hbd add-host: added watchhosts.%s to %s (the previous file: %s.bak)\n", name, *path, *path)
	if msg, err := reloadDaemon(cfg.DataDir); err != nil {
		fmt.Fprintf(stderr, "hbd add-host: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "hbd add-host: %s\n", msg)
	}
	fmt.Fprint(stdout, agentConf)
	return 0
}

// defaultServer is the address an agent most likely reaches the daemon
// under: hbd_host when it names one address, else the host name.
func defaultServer(cfg *config.Config) string {
	switch cfg.HBDHost {
	case "", "0.0.0.0", "::", "[::]":
		if h, err := os.Hostname(); err == nil && h != "" {
			return h
		}
		return "localhost"
	}
	return cfg.HBDHost
}

func watchhostEntry(name, key, indent string) string {
	return fmt.Sprintf("%s%s:\n%s%skey: %q\n%s%stimeout: 30s\n", indent, name, indent, indent, key, indent, indent)
}

// agentConfig is a complete hbc.yaml for host name.
func agentConfig(cfg *config.Config, name, key, server string) string {
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	hb4, hb6 := "", ""
	ip, err := netip.ParseAddr(server)
	hbPort := strconv.Itoa(cfg.HBPort)
	if cfg.HBListen4 != "" && (err != nil || ip.Is4()) {
		hb4 = net.JoinHostPort(server, hbPort)
	}
	if cfg.HBListen6 != "" && (err != nil || ip.Is6()) {
		hb6 = net.JoinHostPort(server, hbPort)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# hbc.yaml for %s, made by `hbd add-host` on %s.\n", name, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "# Every key: docs/AGENT.md. Keep this file secret (it holds the host key).\n")
	fmt.Fprintf(&b, "host: %s\n", name)
	fmt.Fprintf(&b, "key: %q\n", key)
	fmt.Fprintf(&b, "server_ipv4: %q\n", hb4)
	fmt.Fprintf(&b, "server_ipv6: %q\n", hb6)
	fmt.Fprintf(&b, "api_url: %s://%s\n", scheme, net.JoinHostPort(server, strconv.Itoa(cfg.HBDPort)))
	fmt.Fprintf(&b, "spool_dir: /var/lib/hbc/spool\n")
	return b.String()
}

var (
	watchhostsBlock = regexp.MustCompile(`^watchhosts:[ \t]*(#.*)?$`)
	watchhostsEmpty = regexp.MustCompile(`^watchhosts:[ \t]*\{[ \t]*\}[ \t]*(#.*)?$`)
	watchhostsAny   = regexp.MustCompile(`^watchhosts:`)
	leadingSpaces   = regexp.MustCompile(`^( +)[^ #\n]`)
)

// insertWatchhost adds the entry for name to the YAML text: under a block
// `watchhosts:` with the indentation of its entries, in place of
// `watchhosts: {}`, or as a new block at the end. Any other form (a flow
// map with entries) is refused: the operator edits it by hand.
func insertWatchhost(text, name, key string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		switch {
		case watchhostsEmpty.MatchString(line):
			lines[i] = "watchhosts:"
			entry := strings.TrimSuffix(watchhostEntry(name, key, "  "), "\n")
			return strings.Join(append(lines[:i+1], append([]string{entry}, lines[i+1:]...)...), "\n"), nil
		case watchhostsBlock.MatchString(line):
			indent := "  "
			for _, next := range lines[i+1:] {
				if t := strings.TrimSpace(next); t == "" || strings.HasPrefix(t, "#") {
					continue
				}
				if m := leadingSpaces.FindStringSubmatch(next); m != nil {
					indent = m[1]
				}
				break
			}
			entry := strings.TrimSuffix(watchhostEntry(name, key, indent), "\n")
			return strings.Join(append(lines[:i+1], append([]string{entry}, lines[i+1:]...)...), "\n"), nil
		case watchhostsAny.MatchString(line):
			return "", errors.New("watchhosts is written in flow style ({...}); add the entry by hand (hbd add-host without -write prints it)")
		}
	}
	if !strings.HasSuffix(text, "\n") && text != "" {
		text += "\n"
	}
	return text + "\nwatchhosts:\n" + watchhostEntry(name, key, "  "), nil
}

// appendWatchhost edits the config file safely (config.Rewrite): the new
// text is loaded and checked as serve would before it replaces the file,
// and the old file is kept as FILE.bak.
func appendWatchhost(path, name, key string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text, err := insertWatchhost(string(old), name, key)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return config.Rewrite(path, old, []byte(text), func(tmp string) error {
		cfg, err := config.Load(tmp, nil)
		if err == nil {
			err = config.CheckAgainstState(cfg)
		}
		if err != nil {
			return fmt.Errorf("the edited config would be refused, %s is unchanged: %v", path, err)
		}
		if _, ok := cfg.Watchhosts[name]; !ok {
			return fmt.Errorf("the edited config has no watchhosts.%s, %s is unchanged", name, path)
		}
		return nil
	})
}

// isHBD reports whether process pid runs hbd: a pid file left by a crash
// may name another program by now.
func isHBD(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.HasPrefix(string(comm), "hbd")
}

// reloadDaemon sends SIGHUP to the daemon whose pid is in data_dir.
func reloadDaemon(dataDir string) (string, error) {
	pidPath := filepath.Join(dataDir, daemon.PIDFile)
	b, err := os.ReadFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no running hbd found (no %s): the host is watched from its next start, or run `systemctl reload hbd`", pidPath)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %s (%v): run `systemctl reload hbd` or `kill -HUP` the daemon", pidPath, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return "", fmt.Errorf("%s does not hold a process id", pidPath)
	}
	if !isHBD(pid) {
		return "", fmt.Errorf("process %d from %s is not hbd: the host is watched from hbd's next start", pid, pidPath)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("reload hbd (pid %d): %v; run `systemctl reload hbd`", pid, err)
	}
	return fmt.Sprintf("asked hbd (pid %d) to reload", pid), nil
}
