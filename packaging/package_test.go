// Package packaging holds the tests of `make install` and `make package`:
// the packages are built by nfpm, installed by the real dpkg into a
// scratch root, and their systemd units checked by systemd-analyze.
package packaging

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

// repoRoot is the checkout the Makefile lives in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile beside packaging/: %v", err)
	}
	return root
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed on this machine (.ci/run installs it)", tool)
		}
	}
	if runtime.GOOS != "linux" {
		t.Skip("packages are built and installed on Linux only")
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// entry is one file of a package or an installed tree.
type entry struct {
	mode  string // ls -l style, e.g. -rwxr-xr-x
	owner string // user/group as stored
}

// debContents lists a .deb's regular files: path -> mode and owner.
func debContents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out := run(t, "", nil, "dpkg-deb", "-c", deb)
	files := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		files[strings.TrimPrefix(f[5], ".")] = entry{mode: f[0], owner: f[1]}
	}
	return files
}

func TestPackagesInstallIntoAScratchRoot(t *testing.T) {
	need(t, "make", "dpkg", "dpkg-deb", "useradd", "groupadd")
	root := repoRoot(t)
	out := t.TempDir()
	// The .rpm files come from the same nfpm configs; they are built and
	// checked (file list, modes, config files, scripts) where rpm can read
	// them. Installing them needs an rpm-based root; the .deb is installed.
	_, rpmErr := exec.LookPath("rpm")
	formats := "deb"
	if rpmErr == nil {
		formats = "deb rpm"
	}
	run(t, root, nil, "make", "--no-print-directory", "package", "PKG_OUT="+out, "PKG_VERSION=1.2.3~test", "PKG_FORMATS="+formats)

	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	var got []string
	for _, n := range debs {
		got = append(got, filepath.Base(n))
	}
	sort.Strings(got)
	arch := run(t, "", nil, "dpkg", "--print-architecture")
	arch = strings.TrimSpace(arch)
	want := []string{"hbc_1.2.3~test_" + arch + ".deb", "hbd_1.2.3~test_" + arch + ".deb"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("make package PKG_FORMATS=%q made %v, want %v", formats, got, want)
	}
	hbdDeb := filepath.Join(out, "hbd_1.2.3~test_"+arch+".deb")
	hbcDeb := filepath.Join(out, "hbc_1.2.3~test_"+arch+".deb")

	// Every notifiers/<name> with a cmd/ is a plugin (as in the Makefile).
	plugins, _ := filepath.Glob(filepath.Join(root, "notifiers", "*", "cmd"))
	wantHbd := map[string]entry{
		"/usr/bin/hbd":                        {"-rwxr-xr-x", "root/root"},
		"/usr/lib/systemd/system/hbd.service": {"-rw-r--r--", "root/root"},
		"/etc/hbd/hbd.yaml":                   {"-rw-r-----", "root/hbd"},
		"/usr/share/doc/hbd/INSTALL.md":       {"-rw-r--r--", "root/root"},
		"/usr/share/doc/hbd/CONFIG.md":        {"-rw-r--r--", "root/root"},
	}
	for _, p := range plugins {
		wantHbd["/usr/lib/hbd/plugins/hbd-notifier-"+filepath.Base(filepath.Dir(p))] = entry{"-rwxr-xr-x", "root/root"}
	}
	wantHbc := map[string]entry{
		"/usr/bin/hbc":                        {"-rwxr-xr-x", "root/root"},
		"/usr/lib/systemd/system/hbc.service": {"-rw-r--r--", "root/root"},
		"/etc/hbc/hbc.yaml":                   {"-rw-r-----", "root/hbc"},
		"/usr/share/doc/hbc/AGENT.md":         {"-rw-r--r--", "root/root"},
		"/usr/share/doc/hbc/INSTALL.md":       {"-rw-r--r--", "root/root"},
	}

	t.Run("file lists and modes", func(t *testing.T) {
		files := debContents(t, hbdDeb)
		for path, w := range wantHbd {
			if g, ok := files[path]; !ok || g != w {
				t.Errorf("hbd package: %s is %+v (present %v), want %+v", path, g, ok, w)
			}
		}
		for path, e := range files {
			if !strings.HasPrefix(path, "/usr/") && !strings.HasPrefix(path, "/etc/hbd/") {
				t.Errorf("hbd package: unexpected file %s", path)
			}
			if e.mode[5] == 'w' || e.mode[8] == 'w' {
				t.Errorf("hbd package: %s is writable by more than its owner (%s)", path, e.mode)
			}
		}
		files = debContents(t, hbcDeb)
		if len(files) != len(wantHbc) {
			t.Errorf("hbc package has %d files, want %d: %v", len(files), len(wantHbc), files)
		}
		for path, w := range wantHbc {
			if g, ok := files[path]; !ok || g != w {
				t.Errorf("hbc package: %s is %+v (present %v), want %+v", path, g, ok, w)
			}
		}
		for deb, conf := range map[string]string{hbdDeb: "/etc/hbd/hbd.yaml", hbcDeb: "/etc/hbc/hbc.yaml"} {
			ctl := t.TempDir()
			run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
			b, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if err != nil || strings.TrimSpace(string(b)) != conf {
				t.Errorf("%s: conffiles %q (%v), want %s: an upgrade must keep the operator's config", filepath.Base(deb), b, err, conf)
			}
		}
	})

	t.Run("rpm file lists, modes, config files and scripts", func(t *testing.T) {
		if rpmErr != nil {
			t.Skip("rpm is not installed on this machine (.ci/run installs it): the .rpm packages are not built")
		}
		for name, w := range map[string]map[string]entry{"hbd": wantHbd, "hbc": wantHbc} {
			rpms, _ := filepath.Glob(filepath.Join(out, name+"-1.2.3~test-1.*.rpm"))
			if len(rpms) != 1 {
				t.Fatalf("make package PKG_FORMATS=%q made %v for %s, want one %s-1.2.3~test-1.<arch>.rpm", formats, rpms, name, name)
			}
			files := rpmContents(t, rpms[0])
			for path, we := range w {
				if g, ok := files[path]; !ok || g.entry != we {
					t.Errorf("%s rpm: %s is %+v (present %v), want %+v", name, path, g.entry, ok, we)
				}
			}
			for path, e := range files {
				if _, ok := w[path]; !ok && !strings.HasPrefix(path, "/usr/share/doc/"+name+"/") {
					t.Errorf("%s rpm: unexpected file %s", name, path)
				}
				if e.mode[5] == 'w' || e.mode[8] == 'w' {
					t.Errorf("%s rpm: %s is writable by more than its owner (%s)", name, path, e.mode)
				}
			}
			// An upgrade must keep the operator's config: %config(noreplace).
			conf := "/etc/" + name + "/" + name + ".yaml"
			if f := files[conf].flags; f != "cn" {
				t.Errorf("%s rpm: %s has file flags %q, want cn (%%config(noreplace))", name, conf, f)
			}
			scripts := run(t, "", nil, "rpm", "-qp", "--scripts", rpms[0])
			for _, w := range []string{"preinstall", "useradd --system", "postinstall", "chmod 0640", "preuninstall", "postuninstall"} {
				if !strings.Contains(scripts, w) {
					t.Errorf("%s rpm: the scripts lack %q:\n%s", name, w, scripts)
				}
			}
		}
	})

	t.Run("dpkg installs, upgrades and purges", func(t *testing.T) {
		r := scratchRoot(t)
		dpkg := func(args ...string) string {
			return run(t, "", nil, "dpkg", append([]string{"--root=" + r, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
		}
		dpkg("-i", hbdDeb, hbcDeb)
		passwd, _ := os.ReadFile(filepath.Join(r, "etc/passwd"))
		group, _ := os.ReadFile(filepath.Join(r, "etc/group"))
		for _, u := range []string{"hbd", "hbc"} {
			m := regexp.MustCompile(`(?m)^` + u + `:x:(\d+):(\d+):[^:]*:/var/lib/` + u + `:/usr/sbin/nologin$`).FindStringSubmatch(string(passwd))
			if m == nil {
				t.Fatalf("no system user %s in the root's /etc/passwd:\n%s", u, passwd)
			}
			if !regexp.MustCompile(`(?m)^` + u + `:x:` + m[2] + `:`).Match(group) {
				t.Fatalf("no group %s with gid %s in the root's /etc/group:\n%s", u, m[2], group)
			}
			conf := filepath.Join(r, "etc", u, u+".yaml")
			st, err := os.Stat(conf)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o640 {
				t.Errorf("%s: mode %v, want 0640 (it holds keys)", conf, st.Mode().Perm())
			}
			if gid := fileGID(st); gid != m[2] {
				t.Errorf("%s: group %s, want %s's gid %s", conf, gid, u, m[2])
			}
		}
		ver := run(t, "", nil, filepath.Join(r, "usr/bin/hbd"), "--version")
		if !strings.HasPrefix(ver, "hbd ") {
			t.Errorf("installed hbd --version: %q", ver)
		}
		ver = run(t, "", nil, filepath.Join(r, "usr/bin/hbc"), "--version")
		if !strings.HasPrefix(ver, "hbc ") {
			t.Errorf("installed hbc --version: %q", ver)
		}

		// An upgrade (here: the same version again) keeps an edited config.
		conf := filepath.Join(r, "etc/hbd/hbd.yaml")
		edited := append(mustRead(t, conf), []byte("\n# edited by the operator\n")...)
		if err := os.WriteFile(conf, edited, 0o640); err != nil {
			t.Fatal(err)
		}
		dpkg("-i", hbdDeb)
		if got := mustRead(t, conf); !bytes.Equal(got, edited) {
			t.Errorf("reinstalling replaced the edited %s", conf)
		}

		// The installed daemon and agent, configured as docs/INSTALL.md
		// says (ports and paths moved into the scratch root), see each other.
		d := liveInstall(t, r)
		d.Kill()
		dpkg("--purge", "hbd", "hbc")
		for _, gone := range []string{"usr/bin/hbd", "usr/bin/hbc", "usr/lib/hbd/plugins", "etc/hbd/hbd.yaml", "etc/hbc/hbc.yaml", "var/lib/hbd", "usr/lib/systemd/system/hbd.service"} {
			if _, err := os.Stat(filepath.Join(r, gone)); !os.IsNotExist(err) {
				t.Errorf("after dpkg --purge, %s is still there (%v)", gone, err)
			}
		}
	})
}

// rpmFile is one regular file of an .rpm with its rpm file flags
// (c: %config, n: noreplace).
type rpmFile struct {
	entry
	flags string
}

// rpmContents lists an .rpm's regular files: path -> mode, owner and
// flags, as rpm reads them from the package header.
func rpmContents(t *testing.T, rpm string) map[string]rpmFile {
	t.Helper()
	out := run(t, "", nil, "rpm", "-qp", "--qf", `[%{FILEMODES:perms}\t%{FILEUSERNAME}/%{FILEGROUPNAME}\t%{FILEFLAGS:fflags}\t%{FILENAMES}\n]`, rpm)
	files := map[string]rpmFile{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		files[f[3]] = rpmFile{entry: entry{mode: f[0], owner: f[1]}, flags: f[2]}
	}
	return files
}

// scratchRoot is an empty root dpkg can install into: its database and
// the account files useradd --prefix edits.
func scratchRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":         "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(r, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileGID(st os.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(sys.Gid), 10)
	}
	return "?"
}

// TestUnitsPassSystemdAnalyzeVerify checks the units as installed (paths
// substituted) with systemd-analyze verify, which needs no running
// systemd. It prints its findings, unknown keys included, and still exits
// 0 for most of them, so any output fails the test.
func TestUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	need(t, "systemd-analyze")
	root := repoRoot(t)
	dir := t.TempDir()
	// ExecStart must name an executable file; these stand in for hbd and hbc.
	for _, bin := range []string{"hbd", "hbc"} {
		if err := os.WriteFile(filepath.Join(dir, bin), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var units []string
	for _, u := range []string{"hbd", "hbc"} {
		body := string(mustRead(t, filepath.Join(root, "packaging/systemd", u+".service")))
		body = strings.NewReplacer("@BINDIR@", dir, "@SYSCONFDIR@", "/etc").Replace(body)
		for _, directive := range []string{"User=" + u, "ProtectSystem=strict", "StateDirectory=" + u, "ReadWritePaths=/var/lib/" + u, "Restart=on-failure", "NoNewPrivileges=yes"} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(directive) + `$`).MatchString(body) {
				t.Errorf("%s.service: no %s", u, directive)
			}
		}
		p := filepath.Join(dir, u+".service")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	if !strings.Contains(string(mustRead(t, units[0])), "ExecReload=/bin/kill -HUP $MAINPID") {
		t.Errorf("hbd.service: reload must send SIGHUP")
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstallKeepsConfigs installs into a DESTDIR twice: every file
// lands under PREFIX with its mode, and the second run keeps the edited
// configs, putting the new defaults beside the docs.
func TestMakeInstallKeepsConfigs(t *testing.T) {
	need(t, "make", "install")
	root := repoRoot(t)
	dest := t.TempDir()
	install := func() string {
		return run(t, root, nil, "make", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX=/opt/hbd")
	}
	install()
	want := map[string]os.FileMode{
		"opt/hbd/bin/hbd": 0o755,
		"opt/hbd/bin/hbc": 0o755,
		"opt/hbd/lib/hbd/plugins/hbd-notifier-webhook": 0o755,
		"opt/hbd/lib/systemd/system/hbd.service":       0o644,
		"opt/hbd/lib/systemd/system/hbc.service":       0o644,
		"opt/hbd/share/doc/hbd/INSTALL.md":             0o644,
		"etc/hbd/hbd.yaml":                             0o640,
		"etc/hbc/hbc.yaml":                             0o640,
	}
	for p, mode := range want {
		st, err := os.Stat(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("make install: %v", err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("make install: %s has mode %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
	unit := string(mustRead(t, filepath.Join(dest, "opt/hbd/lib/systemd/system/hbd.service")))
	if !strings.Contains(unit, "ExecStart=/opt/hbd/bin/hbd serve -config /etc/hbd/hbd.yaml") || strings.Contains(unit, "DIR@") {
		t.Errorf("hbd.service paths not substituted for PREFIX=/opt/hbd:\n%s", unit)
	}
	conf := filepath.Join(dest, "etc/hbd/hbd.yaml")
	if !strings.Contains(string(mustRead(t, conf)), "plugins_dir: /opt/hbd/lib/hbd/plugins") {
		t.Errorf("hbd.yaml does not name the installed plugins directory")
	}
	edited := []byte("# mine\n")
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	out := install()
	if got := mustRead(t, conf); !bytes.Equal(got, edited) {
		t.Errorf("a second make install replaced the edited hbd.yaml")
	}
	if !strings.Contains(out, "hbd.yaml exists, kept") {
		t.Errorf("make install does not say it kept hbd.yaml:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, "opt/hbd/share/doc/hbd/hbd.yaml.default")); err != nil {
		t.Errorf("the new default config is not installed beside the docs: %v", err)
	}
}

// liveInstall runs the daemon and the agent installed in root r: the
// shipped hbd.yaml with its ports and paths moved into r (systemd's
// StateDirectory stands in as a directory made here), a host added with
// the installed `hbd add-host -write`, whose printed hbc.yaml becomes the
// agent's config; the host turns UP on the daemon.
func liveInstall(t *testing.T, r string) *testutil.Daemon {
	t.Helper()
	port, hbPort := testutil.FreePort(t), testutil.FreePort(t)
	data := filepath.Join(r, "var/lib/hbd")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(r, "etc/hbd/hbd.yaml")
	text := string(mustRead(t, conf))
	for key, val := range map[string]string{
		"hbd_port":    strconv.Itoa(port),
		"hb_port":     strconv.Itoa(hbPort),
		"hb_listen6":  `""`,
		"data_dir":    data,
		"plugins_dir": filepath.Join(r, "usr/lib/hbd/plugins"),
	} {
		re := regexp.MustCompile(`(?m)^` + key + `:.*$`)
		if !re.MatchString(text) {
			t.Fatalf("the shipped hbd.yaml has no %s", key)
		}
		text = re.ReplaceAllString(text, key+": "+val)
	}
	if err := os.WriteFile(conf, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	d := testutil.StartDaemon(t, filepath.Join(r, "usr/bin/hbd"), filepath.Join(r, "etc/hbd"), port)
	addHost := exec.Command(filepath.Join(r, "usr/bin/hbd"), "add-host", "-config", conf, "-write", "web01")
	var addHostErr bytes.Buffer
	addHost.Stderr = &addHostErr
	out, err := addHost.Output() // the agent's hbc.yaml; the report goes to stderr
	if err != nil {
		t.Fatalf("hbd add-host -write: %v\n%s", err, addHostErr.String())
	}
	agentConf := string(out)
	if err := os.WriteFile(filepath.Join(r, "etc/hbc/hbc.yaml"), []byte(agentConf), 0o640); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, "config reloaded", 20*time.Second)
	agent := exec.Command(filepath.Join(r, "usr/bin/hbc"), "-config", filepath.Join(r, "etc/hbc/hbc.yaml"))
	agent.Env = append(os.Environ(), "HBC_SPOOL_DIR="+filepath.Join(r, "var/lib/hbc/spool"), "HBC_HEARTBEAT_INTERVAL=1s")
	var agentLog testutil.Buffer
	agent.Stderr = &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
		if t.Failed() {
			t.Logf("hbc.yaml:\n%s\nhbc's log:\n%s\nhbd's log:\n%s", agentConf, agentLog.String(), d.Stderr())
		}
	})
	testutil.Eventually(t, "web01 UP on the installed daemon", 60*time.Second, func() bool {
		resp, err := http.Get(d.BaseURL + "/api/0/hosts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var hosts []struct{ Name, State string }
		json.NewDecoder(resp.Body).Decode(&hosts)
		for _, h := range hosts {
			if h.Name == "web01" && h.State == "UP" {
				return true
			}
		}
		return false
	})
	testutil.Eventually(t, "web01's samples on the installed daemon", 60*time.Second, func() bool {
		resp, err := http.Get(d.BaseURL + "/api/0/hosts/web01/plugins")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), "cpu_monitor")
	})
	return d
}
