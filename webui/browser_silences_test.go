package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestSilencesInBrowser creates a silence in the Silences view (host and
// metric globs, a duration, a comment), sees the evaluator apply it to the
// matching alert, and deletes it again; the active alert links to its
// chart on the host page.
func TestSilencesInBrowser(t *testing.T) {
	s := newAlertSite(t)
	s.cpu(t, "web01", time.Now().Add(-5*time.Second), 95)
	testutil.Eventually(t, "web01 CRITICAL", 30*time.Second, func() bool {
		st := s.ev.HostAlerts("web01")
		return len(st) == 1 && st[0].Level == "CRITICAL"
	})
	browser := startBrowser(t)
	ctx := tab(t, browser)

	do(t, ctx, chromedp.Navigate(s.url+"/alerts"))
	waitJS(t, ctx, "alert", `document.querySelector('#alerts-body tr[data-host="web01"] a.chart-link') !== null`)
	if href := evalJS[string](t, ctx, `document.querySelector('#alerts-body tr[data-host="web01"] a.chart-link').getAttribute("href")`); href != "/hosts/web01?plugin=cpu_monitor&metric=cpu_percent#history" {
		t.Errorf("chart link %q", href)
	}

	do(t, ctx, chromedp.Click(chromedp.ID("tab-silences")))
	waitJS(t, ctx, "silences view", `!document.getElementById("silences-view").hidden && document.getElementById("silences-empty").textContent === "No active silences."`)
	do(t, ctx, chromedp.SendKeys(chromedp.ID("sil-host"), "web*"))
	waitJS(t, ctx, "match preview", `document.getElementById("sil-host-match").textContent.includes("web01")`)
	if m := evalJS[string](t, ctx, `document.getElementById("sil-host-match").textContent`); strings.Contains(m, "db02") {
		t.Errorf("web* preview %q names db02", m)
	}
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("sil-metric"), "cpu_monitor.*"),
		chromedp.SetValue(chromedp.ID("sil-duration"), "3600"),
		chromedp.SendKeys(chromedp.ID("sil-comment"), "kernel upgrade"),
		chromedp.Click(chromedp.ID("sil-submit")),
	)
	waitJS(t, ctx, "silence listed", `document.querySelectorAll("#silences-body tr").length === 1`)
	sils := s.ev.Silences()
	if len(sils) != 1 || sils[0].Host != "web*" || sils[0].Metric != "cpu_monitor.*" || sils[0].Comment != "kernel upgrade" {
		t.Fatalf("silences %+v", sils)
	}
	if d := sils[0].Until - sils[0].Created; d < 3599 || d > 3601 {
		t.Errorf("silence lasts %v s, want 3600", d)
	}
	testutil.Eventually(t, "web01 silenced", 30*time.Second, func() bool {
		st := s.ev.HostAlerts("web01")
		return len(st) == 1 && st[0].SilencedUntil > 0
	})
	row := evalJS[string](t, ctx, `document.querySelector("#silences-body tr").innerText`)
	for _, want := range []string{"web*", "cpu_monitor.*", "kernel upgrade", "in 59m"} {
		if !strings.Contains(row, want) {
			t.Errorf("silence row %q lacks %q", row, want)
		}
	}
	// The view is in the address: a reload opens it again.
	do(t, ctx, chromedp.Reload())
	waitJS(t, ctx, "silences after reload", `!document.getElementById("silences-view").hidden && document.querySelectorAll("#silences-body tr").length === 1`)
	audit(t, ctx, "alerts-silences")

	do(t, ctx, chromedp.Click(chromedp.CSS(`#silences-body tr button.danger`)))
	waitJS(t, ctx, "silence deleted", `document.querySelectorAll("#silences-body tr").length === 0`)
	if sils := s.ev.Silences(); len(sils) != 0 {
		t.Errorf("silences after delete: %+v", sils)
	}
}

// TestSilenceStopsNotification: a silence created in the UI keeps a
// CRITICAL alert of web01 from reaching a real webhook receiver, while
// db02's alert, raised after it, arrives: the channel delivers in order,
// so web01's notification would have come first.
func TestSilenceStopsNotification(t *testing.T) {
	rcv := pht.NewReceiver(t)
	s := newAlertSite(t, "notification_channels:\n  ops: {type: webhook, url: \""+rcv.URL+"/hook\"}\n")
	browser := startBrowser(t)
	ctx := tab(t, browser)
	do(t, ctx, chromedp.Navigate(s.url+"/alerts#silences"))
	waitJS(t, ctx, "silences view", `!document.getElementById("silences-view").hidden && document.getElementById("silences-empty").textContent === "No active silences."`)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("sil-host"), "web01"),
		chromedp.SetValue(chromedp.ID("sil-metric"), "cpu_monitor.**"),
		chromedp.SendKeys(chromedp.ID("sil-comment"), "maintenance"),
		chromedp.Click(chromedp.ID("sil-submit")),
	)
	waitJS(t, ctx, "silence listed", `document.querySelectorAll("#silences-body tr").length === 1`)
	if n := len(s.ev.Silences()); n != 1 {
		t.Fatalf("%d silences", n)
	}

	now := time.Now()
	s.cpu(t, "web01", now.Add(-2*time.Second), 97)
	testutil.Eventually(t, "web01 CRITICAL and silenced", 30*time.Second, func() bool {
		st := s.ev.HostAlerts("web01")
		return len(st) == 1 && st[0].Level == "CRITICAL" && st[0].SilencedUntil > 0
	})
	s.cpu(t, "db02", now.Add(-time.Second), 97)
	reqs := rcv.Wait(t, 1, 15*time.Second)
	for _, r := range reqs {
		if strings.Contains(string(r.Body), "web01") {
			t.Errorf("the silenced web01 alert reached the receiver: %s", r.Body)
		}
	}
	if !strings.Contains(string(reqs[0].Body), "db02") {
		t.Errorf("first notification %s, want db02's", reqs[0].Body)
	}
}

// TestScheduledSilenceAndMaintenanceInBrowser: the Silences view lists
// the configured maintenance window (read-only) and schedules a silence
// for later. db02's alert, raised inside the window, reaches nobody;
// web01's, raised before its scheduled silence starts, reaches a real
// webhook receiver: the channel delivers in order, so db02's would have
// come first.
func TestScheduledSilenceAndMaintenanceInBrowser(t *testing.T) {
	rcv := pht.NewReceiver(t)
	s := newAlertSite(t, "notification_channels:\n  ops: {type: webhook, url: \""+rcv.URL+"/hook\"}\n",
		"maintenance:\n  - {name: nightly backup, host: db02, start: \"00:00\", end: \"00:00\", comment: restic}\n")
	browser := startBrowser(t)
	ctx := tab(t, browser)
	do(t, ctx, chromedp.Navigate(s.url+"/alerts#silences"))
	waitJS(t, ctx, "maintenance window listed", `document.querySelectorAll('#windows-body tr[data-active="yes"]').length === 1`)
	row := evalJS[string](t, ctx, `document.querySelector("#windows-body tr").innerText`)
	for _, want := range []string{"nightly backup", "db02", "**", "every day, 00:00–00:00 UTC", "in maintenance, ends in", "restic"} {
		if !strings.Contains(row, want) {
			t.Errorf("window row %q lacks %q", row, want)
		}
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("sil-host"), "web01"))
	evalJS[bool](t, ctx, `(() => { const k = document.getElementById("sil-start-kind"); k.value = "at"; k.dispatchEvent(new Event("change")); return true; })()`)
	waitJS(t, ctx, "start input", `!document.getElementById("sil-start-label").hidden && document.getElementById("sil-start").value !== ""`)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("sil-comment"), "release"),
		chromedp.Click(chromedp.ID("sil-submit")),
	)
	waitJS(t, ctx, "scheduled silence listed", `document.querySelectorAll('#silences-body tr[data-scheduled="yes"]').length === 1`)
	sils := s.ev.Silences()
	if len(sils) != 1 || sils[0].Host != "web01" {
		t.Fatalf("silences %+v", sils)
	}
	now := float64(time.Now().Unix())
	if sils[0].Starts < now+50*60 || sils[0].Starts > now+61*60 || sils[0].Until-sils[0].Starts < 7199 || sils[0].Until-sils[0].Starts > 7201 {
		t.Errorf("scheduled silence %+v, want a start in about 1h lasting 2h", sils[0])
	}
	if srow := evalJS[string](t, ctx, `document.querySelector("#silences-body tr").innerText`); !strings.Contains(srow, "in 59m") && !strings.Contains(srow, "in 1h") {
		t.Errorf("scheduled row %q does not say when it starts", srow)
	}
	audit(t, ctx, "alerts-maintenance")

	at := time.Now()
	s.cpu(t, "db02", at.Add(-2*time.Second), 97)
	testutil.Eventually(t, "db02 CRITICAL in maintenance", 5*time.Second, func() bool {
		st := s.ev.HostAlerts("db02")
		return len(st) == 1 && st[0].Level == "CRITICAL" && st[0].SilencedUntil > 0
	})
	s.cpu(t, "web01", at.Add(-time.Second), 97)
	reqs := rcv.Wait(t, 1, 15*time.Second)
	if !strings.Contains(string(reqs[0].Body), "web01") {
		t.Errorf("first notification %s, want web01's", reqs[0].Body)
	}
	for _, r := range rcv.Requests() {
		if strings.Contains(string(r.Body), "db02") {
			t.Errorf("db02's alert in maintenance reached the receiver: %s", r.Body)
		}
	}
}
