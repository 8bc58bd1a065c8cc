package webui_test

import (
	"context"
	_ "embed"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored from npm by webui/vendor/refresh.sh for
// the tests only: it is never served.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

var (
	shotDirOnce sync.Once
	shotDir     string
)

// screenshotDir is where the browser tests write their screenshots:
// $HBD_SCREENSHOT_DIR, else a folder under the system's temp directory
// that the test output names, kept after the run so a person can look.
func screenshotDir(t *testing.T) string {
	shotDirOnce.Do(func() {
		shotDir = os.Getenv("HBD_SCREENSHOT_DIR")
		if shotDir == "" {
			shotDir = filepath.Join(os.TempDir(), "hbd-screenshots")
		}
		if err := os.MkdirAll(shotDir, 0o755); err != nil {
			shotDir = ""
		}
	})
	if shotDir == "" {
		t.Fatal("cannot create the screenshot folder")
	}
	return shotDir
}

// audit checks the page in the tab as it is now with axe-core (no serious
// or critical violations) and writes three screenshots of it into the
// screenshot folder: <name>-desktop.png (1280 px), <name>-phone.png
// (375 px) and <name>-dark.png (1280 px, dark color scheme). At 375 px it
// also checks that nothing is wider than the screen. The tab is left at
// desktop width in the light scheme.
func audit(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !evalJS[bool](t, ctx, `typeof window.axe !== "undefined"`) {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
	}
	check := func(variant string) {
		t.Helper()
		type violation struct {
			ID     string `json:"id"`
			Impact string `json:"impact"`
			Help   string `json:"help"`
			Nodes  []struct {
				Target []any  `json:"target"`
				HTML   string `json:"html"`
			} `json:"nodes"`
		}
		vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](
			`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, html: n.html.slice(0, 160)}))})))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s (%s): %v", name, variant, err)
		}
		for _, v := range vs {
			if v.Impact == "serious" || v.Impact == "critical" {
				var where []string
				for _, n := range v.Nodes {
					where = append(where, n.HTML)
				}
				t.Errorf("axe on %s (%s): %s %s: %s\n  %s", name, variant, v.Impact, v.ID, v.Help, strings.Join(where, "\n  "))
			}
		}
	}
	shoot := func(file string) {
		t.Helper()
		// From the top, so the sticky nav bar is where a reader sees it.
		evalJS[bool](t, ctx, `window.scrollTo(0, 0), true`)
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(screenshotDir(t), file), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	scheme := func(dark bool) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			p := emulation.SetEmulatedMediaParams{}
			if dark {
				p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}
			}
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, p)
			return err
		})
	}
	check("desktop")
	shoot(name + "-desktop.png")

	do(t, ctx, chromedp.EmulateViewport(375, 800))
	waitJS(t, ctx, "phone width", `window.innerWidth === 375`)
	// Let the page's resize handlers redraw (charts) before looking.
	settle(t, ctx)
	if w := evalJS[int](t, ctx, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("%s at 375 px: the page is %d px wide and scrolls sideways", name, w)
	}
	check("375 px")
	shoot(name + "-phone.png")

	do(t, ctx, chromedp.EmulateViewport(1280, 900), scheme(true))
	settle(t, ctx)
	check("dark")
	shoot(name + "-dark.png")
	do(t, ctx, scheme(false))
	t.Logf("screenshots of %s in %s", name, screenshotDir(t))
}

// settle waits for the page's resize and media-change handlers (the
// charts redraw 250 ms after a resize) before it is looked at.
func settle(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => setTimeout(() => r(true), 400))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
}
