package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check-config parses store.dsn (without connecting) and names the key of
// a bad one, never its value.
func TestCheckConfigRefusesABadDSNWithoutShowingIt(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		store, key string
		code       int
	}{
		{"store: {driver: postgres, dsn: 'postgres://hbd:hunter2pw@db:notaport/hbd'}", "store.dsn", 1},
		{"store: {driver: postgres, dsn_file: " + filepath.Join(dir, "dsn") + "}", "store.dsn_file", 1},
		{"store: {driver: postgres, dsn: 'postgres://hbd:hunter2pw@db:5432/hbd?sslmode=require'}", "", 0},
	} {
		os.WriteFile(filepath.Join(dir, "dsn"), []byte("port=x password=hunter2pw\n"), 0o600)
		path := filepath.Join(dir, "hbd.yaml")
		os.WriteFile(path, []byte("data_dir: "+dir+"\n"+c.store+"\n"), 0o600)
		var out, errb bytes.Buffer
		code := run([]string{"check-config", "-config", path}, strings.NewReader(""), &out, &errb)
		all := out.String() + errb.String()
		if code != c.code || strings.Contains(all, "hunter2pw") || (c.key != "" && !strings.Contains(errb.String(), path+": "+c.key+": ")) {
			t.Errorf("%s: exit %d, output %q; want exit %d naming %q without the password", c.store, code, all, c.code, c.key)
		}
	}
}
