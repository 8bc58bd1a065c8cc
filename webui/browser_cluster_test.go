package webui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/hbdmon/hbd/core/auth/authtest"
	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestMain stops the PostgreSQL server the cluster tests start.
func TestMain(m *testing.M) { pgtest.Main(m) }

// runDaemon runs a real daemon in process from a config with extra (the
// users admin and other are added) until stop is called or the test
// ends; it returns the daemon's base URL.
func runDaemon(t *testing.T, extra string) (url string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	text := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: %d
hb_port: %d
data_dir: %s
plugins_dir: %s
watchhosts:
  web01:
    key: "%s"
users:
  admin:
    password_hash: "%s"
    admin: true
  other:
    password_hash: "%s"
%s`, testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), filepath.Join(dir, "data"), filepath.Join(dir, "plugins"), testutil.Key, authtest.Hash("admin"), authtest.Hash("other"), extra)
	path := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.New(ctx, path, daemon.Options{Environ: []string{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return "http://" + d.HTTPAddr().String(), stop
}

// clusterConfig is the store and cluster section of daemon node on dsn,
// with a short lease so a failover takes seconds.
func clusterConfig(dsn, node string) string {
	return fmt.Sprintf(`store:
  driver: postgres
  dsn: %q
cluster:
  enabled: true
  node: %s
  lease_ttl: 2s
  renew_interval: 500ms
`, dsn, node)
}

// loginAs logs user in at base and waits until the browser is at next.
func loginAs(t *testing.T, ctx context.Context, base, user, next string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(base+"/logout"),
		chromedp.Navigate(base+"/login?next="+next),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), authtest.Password(user)),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	cond := `location.pathname === "` + next + `" && !!document.getElementById("nav-logout") && !document.getElementById("nav-logout").hidden`
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](cond)); ok {
			return
		}
	}
	t.Fatalf("%s: the login did not reach %s", user, next)
}

// TestClusterPageFollowsAFailover: two real daemons (in process) on one
// real PostgreSQL database. An administrator watches /cluster on the
// second daemon: it shows both daemons, hbd-a leading with its heartbeat
// flush and delivery backlog, and epoch 1. hbd-a is then stopped: without
// a reload, the page's poll shows hbd-b leading in a later epoch, with
// hbd-a's epoch in the list of recent epochs. A user who is not an admin
// has no link to the page and is refused it.
func TestClusterPageFollowsAFailover(t *testing.T) {
	dsn := pgtest.DSN(t)
	_, stopA := runDaemon(t, clusterConfig(dsn, "hbd-a"))
	// hbd-a takes the lease before hbd-b starts, so it leads first.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var holder string
		conn.QueryRow(context.Background(), `SELECT holder FROM leader_lease`).Scan(&holder)
		if strings.HasPrefix(holder, "hbd-a#") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hbd-a did not take the lease (holder %q)", holder)
		}
	}
	urlB, _ := runDaemon(t, clusterConfig(dsn, "hbd-b"))

	browser := startBrowser(t)
	ctx := tab(t, browser, "status of 403", "favicon.ico")
	loginAs(t, ctx, urlB, "admin", "/cluster")
	if !evalJS[bool](t, ctx, `!document.getElementById("nav-cluster").hidden`) {
		t.Error("an admin has no Cluster link in the nav")
	}
	row := func(node string) string {
		return `(document.querySelector('#nodes-body tr[data-node="` + node + `"]') || {})`
	}
	waitJS(t, ctx, "both daemons, hbd-a leading, flushes and backlogs reported",
		`document.getElementById("leader").textContent === "hbd-a" && `+
			row("hbd-a")+`.dataset && `+row("hbd-a")+`.dataset.role === "leader" && `+
			row("hbd-b")+`.dataset && `+row("hbd-b")+`.dataset.role === "follower" && `+
			`[...document.querySelectorAll("#nodes-body tr")].every(tr => tr.cells[3].textContent.endsWith("ago") || tr.cells[3].textContent === "just now") && `+
			`[...document.querySelectorAll("#nodes-body tr")].every(tr => /^[0-9]+$/.test(tr.cells[4].textContent))`)
	if got := evalJS[string](t, ctx, `document.getElementById("answering").textContent`); got != "hbd-b" {
		t.Errorf("answering daemon %q, want hbd-b", got)
	}
	epoch1 := evalJS[string](t, ctx, `document.getElementById("epoch").textContent`)
	if epoch1 != "1" {
		t.Errorf("epoch %q, want 1", epoch1)
	}
	if top := evalJS[string](t, ctx, `document.querySelector("#epochs-body tr").innerText`); !strings.Contains(top, "hbd-a") || !strings.Contains(top, "still leading") {
		t.Errorf("newest epoch row %q", top)
	}
	audit(t, ctx, "cluster")

	// A failover, seen by the page's own poll: the marker set on the
	// window survives only if the page is not reloaded.
	evalJS[bool](t, ctx, `window.hbdNoReload = true`)
	stopA()
	waitJS(t, ctx, "hbd-b leading after the failover",
		`document.getElementById("leader").textContent === "hbd-b" && `+row("hbd-b")+`.dataset.role === "leader" && document.querySelectorAll("#epochs-body tr").length >= 2`)
	if !evalJS[bool](t, ctx, `window.hbdNoReload === true`) {
		t.Error("the page was reloaded instead of polling")
	}
	if e := evalJS[string](t, ctx, `document.getElementById("epoch").textContent`); e == epoch1 {
		t.Errorf("epoch still %s after the failover", e)
	}
	epochs := evalJS[string](t, ctx, `document.getElementById("epochs-body").innerText`)
	lines := strings.Split(strings.TrimSpace(epochs), "\n")
	if !strings.Contains(lines[0], "hbd-b") || !strings.Contains(lines[0], "still leading") || !strings.Contains(lines[len(lines)-1], "hbd-a") {
		t.Errorf("epochs after the failover:\n%s", epochs)
	}
	if evalJS[string](t, ctx, row("hbd-a")+`.dataset.role`) == "leader" {
		t.Error("the stopped hbd-a is still shown leading")
	}
	audit(t, ctx, "cluster-failover")

	// A user who is not an admin: no link, and the page is refused.
	loginAs(t, ctx, urlB, "other", "/live")
	if !evalJS[bool](t, ctx, `document.getElementById("nav-cluster").hidden`) {
		t.Error("a user who is not an admin sees the Cluster link")
	}
	do(t, ctx, chromedp.Navigate(urlB+"/cluster"))
	waitJS(t, ctx, "403", `document.body.innerText.includes("error")`)
	if body := evalJS[string](t, ctx, `document.body.innerText`); strings.Contains(body, "hbd-a") {
		t.Errorf("a user who is not an admin sees the cluster: %s", body)
	}
}

// TestClusterPageSaysClusteringIsOff: a single daemon (SQLite, no
// cluster section) shows how to turn clustering on instead of the view.
func TestClusterPageSaysClusteringIsOff(t *testing.T) {
	url, _ := runDaemon(t, "")
	browser := startBrowser(t)
	ctx := tab(t, browser, "status of 404")
	loginAs(t, ctx, url, "admin", "/cluster")
	waitJS(t, ctx, "clustering-off help", `!document.getElementById("cluster-off").hidden`)
	if !evalJS[bool](t, ctx, `document.getElementById("cluster-view").hidden`) {
		t.Error("the cluster view shows with clustering off")
	}
	if n := evalJS[string](t, ctx, `document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent`); n != "" {
		t.Errorf("notice with clustering off: %q", n)
	}
	help := evalJS[string](t, ctx, `document.getElementById("cluster-off").innerText`)
	for _, want := range []string{"driver: postgres", "enabled: true", "node:", "docs/HA.md"} {
		if !strings.Contains(help, want) {
			t.Errorf("clustering-off help lacks %q", want)
		}
	}
	audit(t, ctx, "cluster-off")
}
