package main

import (
	"bytes"
	"strings"
	"testing"
)

// `hbd --help` and `hbd -h` printed only "Usage of serve: -config" and
// exited 2; neither binary had --version (issue 14).
func TestHelpAndVersion(t *testing.T) {
	cases := []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"--help"}, "hbd check-config -config FILE"},
		{[]string{"-h"}, "hbd hash-password"},
		{[]string{"help"}, "hbd [serve] -config FILE"},
		{[]string{"--version"}, "hbd "},
		{[]string{"version"}, "hbd "},
		{[]string{"serve", "-h"}, "examples:"},
		{[]string{"-config", "x.yaml", "-h"}, "usage: hbd [serve]"},
		{[]string{"check-config", "--help"}, "systemctl reload hbd"},
		{[]string{"hash-password", "-h"}, "asks for the password twice without echoing it"},
		{[]string{"add-host", "-h"}, "hbd add-host -config /etc/hbd/hbd.yaml"},
		{[]string{"backup", "--help"}, "VACUUM INTO"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(""), &out, &errb)
		if code != 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("hbd %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errb.String())
	}
}

// `hbd help CMD` prints the command's help, as `hbd CMD -h` does; `hbd
// help` with an unknown command says so and exits 2.
func TestHelpCommandPrintsTheCommandsHelp(t *testing.T) {
	if len(commandHelp) < 6 {
		t.Fatalf("commandHelp has %d commands", len(commandHelp))
	}
	for cmd := range commandHelp {
		var viaHelp, viaFlag, errb bytes.Buffer
		if code := run([]string{"help", cmd}, strings.NewReader(""), &viaHelp, &errb); code != 0 {
			t.Errorf("hbd help %s: exit %d, %q", cmd, code, errb.String())
		}
		if code := run([]string{cmd, "-h"}, strings.NewReader(""), &viaFlag, &errb); code != 0 {
			t.Errorf("hbd %s -h: exit %d, %q", cmd, code, errb.String())
		}
		if viaHelp.String() != viaFlag.String() || !strings.Contains(viaHelp.String(), "usage: hbd ") {
			t.Errorf("hbd help %s printed %q; hbd %s -h printed %q", cmd, viaHelp.String(), cmd, viaFlag.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"help", "frobnicate"}, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("hbd help frobnicate: exit %d, stderr %q", code, errb.String())
	}
}
