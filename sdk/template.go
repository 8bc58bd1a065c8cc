package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"
)

// Operator-editable message templates.
//
// A notifier that adds [TemplateFields] to its schema lets the channel's
// owner replace the default title and body with Go text/template
// templates; [Render] applies them (or the defaults) and is all the
// notifier calls. The SDK checks the templates when a channel is saved
// (Validate) by rendering them against a sample event of every kind, so a
// broken template is refused with a [*FieldError] naming its key instead
// of failing at delivery; a template that still fails at delivery falls
// back to the default rendering, never losing the alert.

// Keys of the template fields ([TemplateFields]).
const (
	// TitleTemplateKey holds the title template: one line (line breaks
	// are folded to spaces), used as e-mail subject, push title or the
	// first line of a chat message.
	TitleTemplateKey = "title_template"
	// BodyTemplateKey holds the body template.
	BodyTemplateKey = "body_template"
)

// Bounds of template rendering.
const (
	// MaxRenderedLen bounds a rendered title or body, in bytes; a template
	// whose output exceeds it fails and the default rendering is used.
	MaxRenderedLen = 64 << 10
)

// TemplateFields returns the two optional multiline fields, title_template
// and body_template, that let a channel's owner write the message.
// Append them to a schema's fields and call [Render] in Notify:
//
//	Fields: append([]sdk.Field{ /* the notifier's own */ }, sdk.TemplateFields()...),
func TemplateFields() []Field {
	return []Field{
		{Key: TitleTemplateKey, Label: "Title template", Type: FieldMultiline,
			Help: `Optional Go template for the title, e.g. {{.Emoji}} {{.Host}}: {{.Text}}. Empty: the default title. See docs/NOTIFICATIONS.md for the fields and functions.`},
		{Key: BodyTemplateKey, Label: "Body template", Type: FieldMultiline,
			Help: `Optional Go template for the message, e.g. {{.Text}}{{"\n"}}{{.URL}}. Empty: the default message.`},
	}
}

// TemplateData is what a template sees as "." : every field and method of
// the [Event] (.Host, .MetricPath, .Level, .PreviousLevel, .Value,
// .Threshold, .Comparison, .Owner, .Text, .URL, .ID, .Since, .Time,
// .EpisodeStart, .NotificationCount, .Channel, .Message, .Test,
// .IsRecovery) plus the fields below.
type TemplateData struct {
	Event
	// Kind is the event's kind, never empty ([Event.EffectiveKind]).
	Kind Kind
	// Title and Body are the default renderings ([RenderTitle],
	// [RenderBody]), for templates that only add to them.
	Title string
	Body  string
	// Duration is how long the problem has lasted ([Event.Duration]).
	Duration time.Duration
	// Color is the event's colour as "#rrggbb" ([Color]).
	Color string
	// Emoji is one emoji for the event ([Emoji]).
	Emoji string
}

// NewTemplateData returns the data a template sees for ev.
func NewTemplateData(ev Event) TemplateData {
	return TemplateData{Event: ev, Kind: ev.EffectiveKind(), Title: RenderTitle(ev), Body: RenderBody(ev),
		Duration: ev.Duration(), Color: Color(ev), Emoji: Emoji(ev)}
}

// Message is a rendered notification.
type Message struct {
	// Title is one line of at most a few hundred characters.
	Title string
	// Body is plain text (or whatever markup the channel's body template
	// writes) of one or more lines.
	Body string
}

// Render returns the message for ev: the channel's title and body
// templates ([TitleTemplateKey], [BodyTemplateKey]) where cfg has them,
// else [RenderTitle] and [RenderBody]. A template that fails (it was
// checked when the channel was saved, so this is rare) is replaced by the
// default rendering and the failure is logged through [Logger](ctx); the
// alert is never lost to a template.
func Render(ctx context.Context, cfg Settings, ev Event) Message {
	msg := Message{Title: RenderTitle(ev), Body: RenderBody(ev)}
	titleSrc, bodySrc := cfg.Raw(TitleTemplateKey), cfg.Raw(BodyTemplateKey)
	if strings.TrimSpace(titleSrc) == "" && strings.TrimSpace(bodySrc) == "" {
		return msg
	}
	data := NewTemplateData(ev)
	if strings.TrimSpace(titleSrc) != "" {
		if out, err := execTemplate(TitleTemplateKey, titleSrc, data); err != nil {
			Logger(ctx).Warn("title template failed; using the default title", "error", err.Error())
		} else if title := oneLine(out, maxTitleText); title != "" {
			msg.Title = title
		}
	}
	if strings.TrimSpace(bodySrc) != "" {
		if out, err := execTemplate(BodyTemplateKey, bodySrc, data); err != nil {
			Logger(ctx).Warn("body template failed; using the default body", "error", err.Error())
		} else {
			msg.Body = out
		}
	}
	return msg
}

// CheckTemplates reports whether the templates in cfg parse and render
// against a sample event of every kind ([SampleEvent]); the error is a
// [*FieldError] naming the template's key. It checks only keys s declares
// (through [TemplateFields]). The SDK calls it before every Validate it
// serves, so notifiers need not.
func CheckTemplates(s Schema, cfg Settings) error {
	for _, key := range []string{TitleTemplateKey, BodyTemplateKey} {
		if _, ok := s.Field(key); !ok {
			continue
		}
		src := cfg.Raw(key)
		if strings.TrimSpace(src) == "" {
			continue
		}
		if _, err := parseTemplate(key, src); err != nil {
			return &FieldError{Key: key, Err: err}
		}
		for _, ev := range sampleEvents() {
			if _, err := execTemplate(key, src, NewTemplateData(ev)); err != nil {
				return &FieldError{Key: key, Err: fmt.Errorf("fails for a %s event: %w", ev.EffectiveKind(), err)}
			}
		}
	}
	return nil
}

// templateCache keeps parsed templates by source; it is cleared when it
// grows past templateCacheMax (a daemon has few distinct templates).
var templateCache = struct {
	sync.Mutex
	m map[string]*template.Template
}{m: map[string]*template.Template{}}

const templateCacheMax = 256

// parseTemplate parses src with the template functions and checks it uses
// nothing that could run away (range, unbounded printf widths).
func parseTemplate(name, src string) (*template.Template, error) {
	key := name + "\x00" + src
	templateCache.Lock()
	t, ok := templateCache.m[key]
	templateCache.Unlock()
	if ok {
		return t, nil
	}
	if len(src) > MaxMultilineLen {
		return nil, ErrTooLong
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return nil, cleanTemplateError(name, err)
	}
	calls := map[string][]string{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		var called []string
		if err := checkNodes(tt.Root, &called); err != nil {
			return nil, err
		}
		calls[tt.Name()] = called
	}
	if err := checkCalls(name, calls); err != nil {
		return nil, err
	}
	templateCache.Lock()
	if len(templateCache.m) >= templateCacheMax {
		clear(templateCache.m)
	}
	templateCache.m[key] = t
	templateCache.Unlock()
	return t, nil
}

// errRange: an event has no lists, and a range over a number could run
// for a very long time.
var errRange = errors.New("range is not available in notification templates")

// checkNodes refuses range actions anywhere in the tree and appends the
// names of the templates it calls to called.
func checkNodes(n parse.Node, called *[]string) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c, called); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		return errRange
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, called)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, called)
	case *parse.TemplateNode:
		*called = append(*called, n.Name)
	}
	return nil
}

func checkBranch(b *parse.BranchNode, called *[]string) error {
	if err := checkNodes(b.List, called); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkNodes(b.ElseList, called)
	}
	return nil
}

// maxTemplateCalls bounds how many template invocations one rendering may
// make, counted statically over every branch.
const maxTemplateCalls = 1000

var (
	errTemplateCycle = errors.New("a template may not call itself, directly or through others")
	errTemplateCalls = fmt.Errorf("more than %d template calls", maxTemplateCalls)
)

// checkCalls refuses call cycles (which text/template would follow to a
// depth of 100000) and call trees with more than maxTemplateCalls calls
// (which nested templates multiply).
func checkCalls(root string, calls map[string][]string) error {
	memo := map[string]int{}
	active := map[string]bool{}
	var count func(name string) (int, error)
	count = func(name string) (int, error) {
		if n, ok := memo[name]; ok {
			return n, nil
		}
		if active[name] {
			return 0, errTemplateCycle
		}
		active[name] = true
		defer delete(active, name)
		total := 1
		for _, c := range calls[name] {
			n, err := count(c)
			if err != nil {
				return 0, err
			}
			if total += n; total > maxTemplateCalls {
				return 0, errTemplateCalls
			}
		}
		memo[name] = total
		return total, nil
	}
	_, err := count(root)
	return err
}

// execTemplate renders src with data, bounded to MaxRenderedLen bytes.
func execTemplate(name, src string, data TemplateData) (string, error) {
	t, err := parseTemplate(name, src)
	if err != nil {
		return "", err
	}
	w := &limitedBuffer{max: MaxRenderedLen}
	if err := t.Execute(w, data); err != nil {
		if errors.Is(err, errRenderedTooLong) {
			return "", errRenderedTooLong
		}
		return "", cleanTemplateError(name, err)
	}
	return w.String(), nil
}

var errRenderedTooLong = fmt.Errorf("renders more than %d bytes", MaxRenderedLen)

// limitedBuffer fails writes past max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errRenderedTooLong
	}
	return b.Buffer.Write(p)
}

// cleanTemplateError rewrites text/template's "template: name:1:2:
// executing "name" at <.X>: …" as "line 1:2: at <.X>: …".
func cleanTemplateError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	if rest, ok := strings.CutPrefix(msg, name+":"); ok {
		msg = "line " + rest
	}
	msg = strings.Replace(msg, "executing \""+name+"\" at ", "at ", 1)
	return errors.New(oneLine(msg, 300))
}

// templateFuncs are the functions a template may call besides the
// text/template built-ins (and, or, not, len, index, slice, eq, ne, lt, le,
// gt, ge, print, println, html, js, urlquery; printf is replaced by a
// bounded version). They are documented in docs/NOTIFICATIONS.md.
var templateFuncs = template.FuncMap{
	"printf":   boundedPrintf,
	"value":    FormatValue,
	"duration": FormatDuration,
	"time":     formatTime,
	"date":     formatDate,
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"trim":     strings.TrimSpace,
	"oneline":  func(s string) string { return oneLine(s, MaxRenderedLen) },
	"truncate": truncate,
	"replace":  func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
	"contains": strings.Contains,
	"default":  defaultValue,
	"json":     jsonString,
	"safeid":   SafeID,
	"markdown": EscapeMarkdown,
}

// bigWidth matches a printf verb with a width or precision of 4 digits or
// more, or one taken from the arguments (*).
var bigWidth = regexp.MustCompile(`%[^a-zA-Z%]*?(\d{4,}|\*)`)

func boundedPrintf(format string, args ...any) (string, error) {
	if bigWidth.MatchString(format) {
		return "", errors.New("printf: width or precision too large")
	}
	return fmt.Sprintf(format, args...), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func formatDate(layout string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if len(layout) > 100 {
		layout = layout[:100]
	}
	return t.UTC().Format(layout)
}

func truncate(n int, s string) string { return Truncate(s, n) }

func defaultValue(fallback, v any) any {
	switch x := v.(type) {
	case nil:
		return fallback
	case string:
		if strings.TrimSpace(x) == "" {
			return fallback
		}
	case Level:
		if x == "" {
			return fallback
		}
	case Kind:
		if x == "" {
			return fallback
		}
	}
	return v
}

// jsonString returns v encoded as JSON, e.g. a string with its quotes.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// FormatDuration formats d for people, rounded to the second and with at
// most two units: "45s", "2m10s", "3h5m", "2d4h". Negative durations are
// formatted as zero.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	d = d.Round(time.Second)
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	hours, d := d/time.Hour, d%time.Hour
	mins, secs := d/time.Minute, (d%time.Minute)/time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs)
	default:
		return fmt.Sprintf("%ds", secs)
	}
}

// EscapeMarkdown makes s show as written in the Markdown of chat services
// that follow CommonMark's inline rules (Discord, Mattermost, Rocket.Chat,
// Zulip, GitHub): it puts a backslash before the characters that start
// formatting there and nowhere else, so text stays readable and links keep
// working:
//
//   - always \ ` * ~ | and <: code, emphasis, strike-through, spoilers,
//     autolinks and mentions ("<@123>");
//   - a ] followed by "(": the end of a link's text ("[x](y)"), so that
//     "[CRITICAL]" reads as it is and no link can be made;
//   - _ unless it stands between two letters or digits (web_01 and
//     cpu_monitor.cpu_percent stay as they are: an underscore inside a word
//     is not emphasis);
//   - at the start of a line, # > - + = and the "." or ")" after leading
//     digits when a space follows ("1. "): headings, quotes and lists;
//   - nothing inside an http:// or https:// URL (up to the next white
//     space), which the services link as it is.
//
// Other punctuation ("97.2", "-5", "a+b", "!") is left alone. It is not
// for Telegram's MarkdownV2, which wants every one of _*[]()~`>#+-=|{}.!
// escaped (send HTML there, escaped with html.EscapeString, as the
// telegram notifier does), nor for Slack's mrkdwn, which has no backslash
// escapes (replace &, < and > with entities). Escape values, not a whole
// message whose own formatting you want kept.
func EscapeMarkdown(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	lineStart := true
	for i := 0; i < len(s); {
		if hasURLPrefix(s[i:]) {
			end := i + strings.IndexFunc(s[i:], unicode.IsSpace)
			if end < i {
				end = len(s)
			}
			b.WriteString(s[i:end])
			i, lineStart = end, false
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n':
			lineStart = true
			b.WriteRune(r)
			i += size
			continue
		case lineStart && (r == ' ' || r == '\t'):
			b.WriteRune(r)
			i += size
			continue
		case lineStart && r >= '0' && r <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			b.WriteString(s[i:j])
			if j < len(s) && (s[j] == '.' || s[j] == ')') && (j+1 == len(s) || strings.IndexByte(" \t\r\n", s[j+1]) >= 0) {
				b.WriteByte('\\')
				b.WriteByte(s[j])
				j++
			}
			i, lineStart = j, false
			continue
		case strings.ContainsRune("\\`*~|<", r),
			r == ']' && strings.HasPrefix(s[i+size:], "("),
			lineStart && strings.ContainsRune("#>-+=", r),
			r == '_' && !(isAlnum(lastRune(s[:i])) && isAlnum(firstRune(s[i+size:]))):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		i += size
		lineStart = false
	}
	return b.String()
}

func hasURLPrefix(s string) bool {
	return len(s) > 8 && (strings.EqualFold(s[:7], "http://") || strings.EqualFold(s[:8], "https://"))
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// Colours of [Color].
const (
	ColorCritical     = "#d32f2f"
	ColorWarning      = "#f9a825"
	ColorUnknown      = "#757575"
	ColorResolved     = "#2e7d32"
	ColorAcknowledged = "#1565c0"
	ColorFlapping     = "#8e24aa"
)

// Color returns a colour for ev as "#rrggbb", for chat services that colour
// a message: green for a recovery (or any OK), blue when acknowledged,
// purple when flapping, else red for CRITICAL, amber for WARNING and grey
// for UNKNOWN.
func Color(ev Event) string {
	switch {
	case ev.IsRecovery() || ev.Level == LevelOK:
		return ColorResolved
	case ev.EffectiveKind() == KindAcknowledged:
		return ColorAcknowledged
	case ev.EffectiveKind() == KindFlapping:
		return ColorFlapping
	case ev.Level == LevelCritical:
		return ColorCritical
	case ev.Level == LevelWarning:
		return ColorWarning
	default:
		return ColorUnknown
	}
}

// Emoji returns one emoji for ev, in the order of [Color]: ✅ recovered or
// OK, 👀 acknowledged, 🔁 flapping, 🔴 CRITICAL, 🟠 WARNING, ❔ UNKNOWN.
func Emoji(ev Event) string {
	switch {
	case ev.IsRecovery() || ev.Level == LevelOK:
		return "✅"
	case ev.EffectiveKind() == KindAcknowledged:
		return "👀"
	case ev.EffectiveKind() == KindFlapping:
		return "🔁"
	case ev.Level == LevelCritical:
		return "🔴"
	case ev.Level == LevelWarning:
		return "🟠"
	default:
		return "❔"
	}
}
