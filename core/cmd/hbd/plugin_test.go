package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestPluginInspectPrintsEveryBuiltInSchema: `hbd plugin inspect` starts
// each built-in notifier binary and prints its type and fields.
func TestPluginInspectPrintsEveryBuiltInSchema(t *testing.T) {
	for pkg, want := range map[string][]string{
		pht.Webhook:  {`notifier type "webhook" (Webhook), protocol 2`, "url", "secret", "body_template"},
		pht.Pushover: {`notifier type "pushover" (Pushover), protocol 2`, "choice (-2|-1|0|1|2)", "token"},
		pht.Email:    {`notifier type "email" (E-mail), protocol 2`, "host", "starttls"},
	} {
		bin := testutil.Build(t, pkg)
		var out, errb bytes.Buffer
		if code := run([]string{"plugin", "inspect", bin}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("inspect %s: exit %d, stderr %q", pkg, code, errb.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("inspect %s: output lacks %q:\n%s", pkg, w, out.String())
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"plugin", "inspect", "-json", testutil.Build(t, pht.Webhook)}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("inspect -json: exit %d %s", code, errb.String())
	}
	var s struct {
		Type     string           `json:"type"`
		Protocol int              `json:"protocol"`
		Fields   []map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Type != "webhook" || s.Protocol != 2 || len(s.Fields) < 4 {
		t.Errorf("inspect -json = %v %s", err, out.String())
	}
}

// TestPluginInspectExplainsFailures: a binary that is no plugin, or dies
// at start, gets the first useful line of why and exit status 1.
func TestPluginInspectExplainsFailures(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		file, want string
	}{
		{script("panics", "echo 'panic: no config' >&2\nexit 2\n"), "the process ended before the plugin handshake (stderr: panic: no config)"},
		{script("chatty", "echo hello\nsleep 5\n"), `not an hbd notifier plugin: it printed "hello" instead of the plugin handshake`},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"plugin", "inspect", "-timeout", "10s", c.file}, strings.NewReader(""), &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), c.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("inspect %s: exit %d, stderr %q; want 1 and one line with %q", c.file, code, errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"plugin"}, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: hbd plugin inspect") {
		t.Errorf("hbd plugin: exit %d %q", code, errb.String())
	}
	if code := run([]string{"plugin", "-h"}, strings.NewReader(""), &out, &errb); code != 0 || !strings.Contains(out.String(), "hbd plugin inspect ./hbd-notifier-matrix") {
		t.Errorf("hbd plugin -h: exit %d %q", code, out.String())
	}
}

// TestPluginInspectPrintsEveryNotifierBinary: `hbd plugin inspect` prints
// the type and every field of each binary built from notifiers/*/cmd (the
// issue's "done when"), as text and as JSON that agree.
func TestPluginInspectPrintsEveryNotifierBinary(t *testing.T) {
	pkgs := pht.BuiltIn(t)
	if len(pkgs) < 12 {
		t.Fatalf("only %d notifier binaries: %v", len(pkgs), pkgs)
	}
	for _, pkg := range pkgs {
		name := strings.TrimPrefix(filepath.Base(pkg), "hbd-notifier-")
		t.Run(name, func(t *testing.T) {
			bin := testutil.Build(t, pkg)
			var text, js, errb bytes.Buffer
			if code := run([]string{"plugin", "inspect", bin}, strings.NewReader(""), &text, &errb); code != 0 {
				t.Fatalf("inspect: exit %d, stderr %q", code, errb.String())
			}
			if code := run([]string{"plugin", "inspect", "-json", bin}, strings.NewReader(""), &js, &errb); code != 0 {
				t.Fatalf("inspect -json: exit %d, stderr %q", code, errb.String())
			}
			var s struct {
				Type     string `json:"type"`
				Label    string `json:"label"`
				Protocol int    `json:"protocol"`
				Fields   []struct {
					Key  string `json:"key"`
					Type string `json:"type"`
				} `json:"fields"`
			}
			if err := json.Unmarshal(js.Bytes(), &s); err != nil || s.Type != name || s.Label == "" || s.Protocol != 2 || len(s.Fields) == 0 {
				t.Fatalf("inspect -json = %v: %s", err, js.String())
			}
			head := fmt.Sprintf("notifier type %q (%s), protocol 2, %d fields", name, s.Label, len(s.Fields))
			if !strings.Contains(text.String(), head) {
				t.Errorf("output lacks %q:\n%s", head, text.String())
			}
			lines := strings.Split(text.String(), "\n")
			for _, f := range s.Fields {
				found := false
				for _, l := range lines {
					if fs := strings.Fields(l); len(fs) >= 2 && fs[0] == f.Key && strings.HasPrefix(fs[1], f.Type) {
						found = true
					}
				}
				if !found {
					t.Errorf("output has no line for field %s (%s):\n%s", f.Key, f.Type, text.String())
				}
			}
		})
	}
}
