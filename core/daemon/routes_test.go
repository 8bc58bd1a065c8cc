package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestEveryRouteIsDocumented keeps docs/HTTP_API.md in step with the route
// table: every method and path the daemon serves must be in its summary.
func TestEveryRouteIsDocumented(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, testutil.FreePort(t), "")
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	d, err := daemon.New(context.Background(), filepath.Join(dir, "hbd.yaml"), daemon.Options{Environ: []string{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	doc := string(mustRead(t, filepath.Join(testutil.RepoRoot(t), "docs/HTTP_API.md")))
	var table []string
	for _, r := range d.API.Routes() {
		if r.HTML || strings.HasPrefix(r.Path, "/static") {
			continue
		}
		path := strings.NewReplacer(":hostname", "{hostname}", ":plugin_name", "{plugin_name}", ":name", "{name}", ":id", "{id}").Replace(r.Path)
		row := fmt.Sprintf("| `%s` | `%s` |", r.Method, path)
		table = append(table, fmt.Sprintf("%s %s", row, r.Access))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/HTTP_API.md lacks the row %s", row)
		}
	}
	if t.Failed() {
		t.Log("routes:\n" + strings.Join(table, "\n"))
	}
}
