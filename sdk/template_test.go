package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"

	"time"

	"github.com/hashicorp/go-hclog"
)

func templateSchema() Schema {
	return Schema{Type: "chat", Label: "Chat", Fields: append([]Field{
		{Key: "url", Label: "URL", Type: FieldText, Required: true},
	}, TemplateFields()...)}
}

func settingsWith(t *testing.T, title, body string) Settings {
	t.Helper()
	set, err := NewSettings(templateSchema(), Config{"url": "https://chat.example", TitleTemplateKey: title, BodyTemplateKey: body})
	if err != nil {
		t.Fatalf("NewSettings: %v", err)
	}
	return set
}

func TestTemplateFieldsPassSchemaCheck(t *testing.T) {
	if err := templateSchema().Check(); err != nil {
		t.Fatal(err)
	}
}

func TestRenderWithoutTemplatesIsTheDefault(t *testing.T) {
	ev := SampleEvent(KindFiring)
	got := Render(context.Background(), settingsWith(t, "", " \n"), ev)
	if got.Title != RenderTitle(ev) || got.Body != RenderBody(ev) {
		t.Errorf("Render = %+v, want the default rendering", got)
	}
	if !strings.Contains(got.Body, "Threshold: >= 95") || !strings.Contains(got.Body, "Owner: alice") ||
		!strings.Contains(got.Body, "https://hbd.example.com/hosts/web01") {
		t.Errorf("default body lacks threshold, owner or link:\n%s", got.Body)
	}
}

func TestRenderAppliesTemplates(t *testing.T) {
	set := settingsWith(t,
		`{{.Emoji}} {{upper (print .Kind)}} {{.Host}}
  {{.MetricPath}}`,
		`{{.Text}} ({{value .Value}} {{.Comparison}} {{value .Threshold}}) for {{duration .Duration}}
owner={{default "nobody" .Owner}} color={{.Color}} id={{safeid .ID}} json={{json .Host}} md={{markdown "web_01"}}
{{if .IsRecovery}}fixed{{else}}open{{end}} {{.URL}}`)
	ev := SampleEvent(KindFiring)
	got := Render(context.Background(), set, ev)
	if got.Title != "🔴 FIRING web01 cpu_monitor.cpu_percent" {
		t.Errorf("title = %q (templates fold lines into one)", got.Title)
	}
	want := "web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples (97.2 >= 95) for 3m0s\n" +
		"owner=alice color=#d32f2f id=" + SafeID(ev.ID) + ` json="web01" md=web_01` + "\nopen https://hbd.example.com/hosts/web01"
	if got.Body != want {
		t.Errorf("body =\n%s\nwant\n%s", got.Body, want)
	}
	res := Render(context.Background(), set, SampleEvent(KindResolved))
	if !strings.Contains(res.Title, "✅ RESOLVED") || !strings.Contains(res.Body, "fixed") {
		t.Errorf("resolved rendering = %+v", res)
	}
}

func TestCheckTemplatesNamesTheField(t *testing.T) {
	tests := []struct {
		name, title, body, key, want string
	}{
		{"syntax", "{{.Host", "", TitleTemplateKey, "title_template: line 1: unclosed action"},
		{"unknown field", "", "{{.Hostname}}", BodyTemplateKey, "body_template: fails for a firing event: line 1:2: at <.Hostname>: can't evaluate field Hostname"},
		{"unknown function", "{{shout .Host}}", "", TitleTemplateKey, "shout"},
		{"range refused", "", "{{range 1000000000}}x{{end}}", BodyTemplateKey, "range is not available"},
		{"range in a define", "", `{{define "x"}}{{if 1}}{{range .Host}}{{end}}{{end}}{{end}}ok`, BodyTemplateKey, "range is not available"},
		{"huge printf width", "", `{{printf "%099999999d" 1}}`, BodyTemplateKey, "width or precision too large"},
		{"printf width from args", "", `{{printf "%*d" 100000000 1}}`, BodyTemplateKey, "width or precision too large"},
		{"output too long", "", `{{define "a"}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{end}}{{define "b"}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{template "a" .}}{{end}}{{template "b" .}}{{template "b" .}}{{template "b" .}}{{template "b" .}}`, BodyTemplateKey, "renders more than"},
		{"recursion", "", `{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}`, BodyTemplateKey, "may not call itself"},
		{"mutual recursion", "", `{{define "a"}}{{template "b" .}}{{end}}{{define "b"}}{{if .Test}}{{template "a" .}}{{end}}{{end}}{{template "a" .}}`, BodyTemplateKey, "may not call itself"},
		{"call explosion", "", `{{define "a"}}{{end}}{{define "b"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{template "a"}}{{end}}{{define "c"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{template "b"}}{{end}}{{define "d"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{template "c"}}{{end}}{{template "d"}}`, BodyTemplateKey, "template calls"},
		{"fails on some kinds only", "{{.Since.Add 1}}{{if .IsRecovery}}{{index .Host 99}}{{end}}", "", TitleTemplateKey, "resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTemplates(templateSchema(), settingsWith(t, tt.title, tt.body))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckTemplates = %v, want a FieldError for %s containing %q", err, tt.key, tt.want)
			}
		})
	}
	if err := CheckTemplates(templateSchema(), settingsWith(t, "{{.Title}}", "{{.Body}}\n{{time .Since}} {{date \"15:04\" .Time}} {{truncate 5 .Text}}")); err != nil {
		t.Errorf("CheckTemplates(good templates) = %v", err)
	}
	// A schema without the template fields: the keys are not templates.
	plain := Schema{Type: "x", Label: "X"}
	set, _ := NewSettings(plain, Config{TitleTemplateKey: "{{"})
	if err := CheckTemplates(plain, set); err != nil {
		t.Errorf("CheckTemplates for a schema without template fields = %v", err)
	}
}

func TestRenderFallsBackWhenATemplateFails(t *testing.T) {
	var logs strings.Builder
	ctx := WithLogger(context.Background(), hclog.New(&hclog.LoggerOptions{Output: &logs}))
	// Valid at save (every sample has an owner or not), fails for this event.
	set := settingsWith(t, "{{index .Owner 5}}", "{{.Nope}}")
	ev := SampleEvent(KindFiring)
	got := Render(ctx, set, ev)
	if got.Title != RenderTitle(ev) || got.Body != RenderBody(ev) {
		t.Errorf("Render with failing templates = %+v, want the defaults", got)
	}
	if !strings.Contains(logs.String(), "title template failed") || !strings.Contains(logs.String(), "body template failed") {
		t.Errorf("failures not logged: %s", logs.String())
	}
}

func TestSampleEventsAreRealistic(t *testing.T) {
	for _, k := range Kinds {
		ev := SampleEvent(k)
		if ev.Host == "" || ev.MetricPath == "" || ev.Text == "" || ev.Comparison == "" || ev.EffectiveKind() != k {
			t.Errorf("SampleEvent(%s) = %+v", k, ev)
		}
		if !strings.ContainsAny(ev.ID, "/ ü") {
			t.Errorf("SampleEvent(%s).ID %q is not awkward", k, ev.ID)
		}
	}
	if !SampleEvent(KindTest).Test || !strings.HasPrefix(RenderTitle(SampleEvent(KindTest)), "[TEST] web01 cpu_monitor.cpu_percent 97.2") {
		t.Errorf("test sample title = %q", RenderTitle(SampleEvent(KindTest)))
	}
}

func TestFormatDurationAndEscapes(t *testing.T) {
	for d, want := range map[string]string{"0s": "0s", "45s": "45s", "130s": "2m10s", "11100s": "3h5m", "187200s": "2d4h"} {
		dur, _ := parseDurationForTest(d)
		if got := FormatDuration(dur); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for in, want := range map[string]string{
		"web_01 *[x](y)* [CRITICAL] ![i](u)":              `web_01 \*[x\](y)\* [CRITICAL] ![i\](u)`,
		"a*b_c|d~e`f":                                     "a\\*b_c\\|d\\~e\\`f",
		"_web_ __init__ a_ _b":                            `\_web\_ \_\_init\_\_ a\_ \_b`,
		"97.2 ≥ 95, -5, a+b! (x)":                         "97.2 ≥ 95, -5, a+b! (x)",
		"<@123> \\o/":                                     `\<@123> \\o/`,
		"# h\n> q\n - l\n+ p\n= e\n12. n\n3) m\nx # - 1.": "\\# h\n\\> q\n \\- l\n\\+ p\n\\= e\n12\\. n\n3\\) m\nx # - 1.",
		"see https://hbd.example.com/hosts/web_01?m=cpu_monitor.cpu_percent&x=*a* now_": "see https://hbd.example.com/hosts/web_01?m=cpu_monitor.cpu_percent&x=*a* now\\_",
		"HTTPS://X.example/_a_\n_b": "HTTPS://X.example/_a_\n\\_b",
		"12.5 up\n1.x\n2.":          "12.5 up\n1.x\n2\\.",
		"http:// *":                 `http:// \*`,
		"wéb_ü 🔴_x":                 "wéb_ü 🔴\\_x",
	} {
		if got := EscapeMarkdown(in); got != want {
			t.Errorf("EscapeMarkdown(%q) = %q, want %q", in, got, want)
		}
	}
}

func parseDurationForTest(s string) (d time.Duration, err error) { return time.ParseDuration(s) }

// BenchmarkRender measures one message: the standard texts, and two
// operator templates (parsed once, then taken from the cache).
func BenchmarkRender(b *testing.B) {
	ev := SampleEvent(KindFiring)
	plain, _ := NewSettings(templateSchema(), Config{"url": "https://chat.example"})
	tpl, _ := NewSettings(templateSchema(), Config{"url": "https://chat.example",
		TitleTemplateKey: "{{.Emoji}} {{.Host}} {{upper (print .Kind)}}",
		BodyTemplateKey:  "{{.Text}}\n{{if .Comparison}}{{value .Value}} {{.Comparison}} {{value .Threshold}}{{end}}\n{{.URL}}"})
	ctx := context.Background()
	b.Run("default", func(b *testing.B) {
		for b.Loop() {
			Render(ctx, plain, ev)
		}
	})
	b.Run("templates", func(b *testing.B) {
		for b.Loop() {
			Render(ctx, tpl, ev)
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if err := CheckTemplates(templateSchema(), tpl); err != nil {
				b.Fatal(err)
			}
		}
	})
}
