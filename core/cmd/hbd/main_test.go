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
