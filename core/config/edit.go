package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The admin config editor (docs/CONFIG.md, "Editing in the browser") shows
// the config file with every secret value replaced by Masked and, on save,
// puts the value of the file in force back wherever Masked was left. The
// file is edited as text, so comments, order and quoting stay as the
// operator wrote them; only the secret values' tokens are replaced.

// Masked stands for a secret value in the config editor's text.
const Masked = "•••"

// ErrMaskedUnknown is returned by RestoreSecrets for a Masked value at a
// place where the file in force has no secret to put back.
var ErrMaskedUnknown = errors.New(`"` + Masked + `" stands for the current secret, but the file in force has none here: type the value`)

// secretPaths are the dotted key paths of secret values: every Secret
// field of Config (found by reflection, "*" for a map key), each setting
// of a notification channel other than its common keys (Channel.Fields,
// all Secrets), and users' password hashes, which are not a Secret but
// must not be shown either.
var secretPaths = func() [][]string {
	var out [][]string
	var walk func(t reflect.Type, prefix []string)
	walk = func(t reflect.Type, prefix []string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			p := append(append([]string(nil), prefix...), tag)
			ft := f.Type
			if ft == reflect.TypeOf(Secret("")) {
				out = append(out, p)
				continue
			}
			if ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String {
				p = append(p, "*")
				ft = ft.Elem()
				if ft == reflect.TypeOf(Secret("")) {
					out = append(out, p)
					continue
				}
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), nil)
	out = append(out, []string{"notification_channels", "*", "*"}, []string{"users", "*", "password_hash"})
	return out
}()

// channelCommonKeys are the settings of a notification channel that are
// not its type's fields, hence not secret (parseChannels).
var channelCommonKeys = map[string]bool{"type": true, "min_level": true, "owner": true, "private": true, "hosts": true}

// SecretKeys returns the patterns of the keys whose values the config
// editor masks ("*" for any map key), for the documentation and tests.
func SecretKeys() []string {
	var out []string
	for _, p := range secretPaths {
		out = append(out, strings.Join(p, "."))
	}
	sort.Strings(out)
	return out
}

func isSecretPath(path []string) bool {
	for _, p := range secretPaths {
		if len(p) != len(path) {
			continue
		}
		ok := true
		for i := range p {
			if p[i] != "*" && p[i] != path[i] {
				ok = false
				break
			}
		}
		if ok && p[0] == "notification_channels" && channelCommonKeys[path[2]] {
			ok = false
		}
		if ok {
			return true
		}
	}
	return false
}

// Version identifies a config file's content for the editor's optimistic
// concurrency: a save names the version it was edited from.
func Version(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// ReadFile reads a config file of at most MaxFileBytes, as Load does.
func ReadFile(path string) ([]byte, error) {
	fail := func(format string, a ...any) error {
		return &Error{File: path, Msg: fmt.Sprintf(format, a...)}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fail("cannot read: %v", unwrapPathErr(err))
	}
	if st.Size() > MaxFileBytes {
		return nil, fail("file is larger than %d bytes", MaxFileBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("cannot read: %v", unwrapPathErr(err))
	}
	return raw, nil
}

// Validate is the check a reload makes of a new config file's content
// (name in errors): it is parsed as Load parses it, and refused when
// CheckTransition refuses it against the summary of the config in force.
// SIGHUP and the config editor both run it.
func Validate(inForce Summary, name string, raw []byte, environ []string) (*Config, error) {
	if len(raw) > MaxFileBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}
	}
	cfg, err := Parse(name, raw, environ)
	if err != nil {
		return nil, err
	}
	if err := CheckTransition(inForce, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// secretToken is one secret scalar in a config text: its key path, the
// byte range of its token in the text, and its value.
type secretToken struct {
	path       []string
	line       int // 1-based
	start, end int // byte offsets of the token
	value      string
	multiline  bool
	alias      bool
}

// secretTokens finds the secret scalars of a config text. A text that is
// not YAML gives the parser's error.
func secretTokens(raw []byte) ([]secretToken, *yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, nil, err
	}
	lines := lineStarts(raw)
	var out []secretToken
	var walk func(n *yaml.Node, path []string, keyIndent int, flow bool)
	walk = func(n *yaml.Node, path []string, keyIndent int, flow bool) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, -1, false)
			}
		case yaml.MappingNode:
			inFlow := flow || n.Style&yaml.FlowStyle != 0
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(append([]string(nil), path...), k.Value)
				if isSecretPath(p) {
					if v.Kind == yaml.ScalarNode && v.Value != "" { // an empty value hides nothing
						start, end, multi := scalarExtent(raw, lines, v, k.Column-1, inFlow)
						// A key without a value (null) hides nothing.
						if end > start {
							out = append(out, secretToken{path: p, line: v.Line, start: start, end: end, value: v.Value, multiline: multi})
						}
					} else if v.Kind == yaml.AliasNode {
						out = append(out, secretToken{path: p, line: v.Line, alias: true})
					}
					continue
				}
				walk(v, p, k.Column-1, inFlow)
			}
		case yaml.SequenceNode:
			inFlow := flow || n.Style&yaml.FlowStyle != 0
			for i, c := range n.Content {
				walk(c, append(append([]string(nil), path...), strconv.Itoa(i)), keyIndent, inFlow)
			}
		}
	}
	walk(&doc, nil, -1, false)
	// Anchored secrets (`key: &k "…"` used elsewhere as *k) are shown
	// masked where they are defined; the alias itself shows no value.
	return out, &doc, nil
}

// lineStarts returns the byte offset of each line's start.
func lineStarts(raw []byte) []int {
	starts := []int{0}
	for i, b := range raw {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offsetOf converts a yaml.v3 position (1-based line, 1-based column in
// characters) into a byte offset.
func offsetOf(raw []byte, lines []int, line, col int) int {
	if line < 1 || line > len(lines) {
		return len(raw)
	}
	off := lines[line-1]
	for c := 1; c < col && off < len(raw) && raw[off] != '\n'; c++ {
		_, w := utf8.DecodeRune(raw[off:])
		off += w
	}
	return off
}

// scalarExtent returns the byte range of a scalar value's token in raw:
// a quoted string up to its closing quote, a plain one up to a comment or
// the end of its line (in flow style also up to , ] or }), and a block
// scalar (| or >) or a plain one continued on more lines through every
// following line indented deeper than its key (keyIndent).
func scalarExtent(raw []byte, lines []int, v *yaml.Node, keyIndent int, flow bool) (start, end int, multiline bool) {
	start = offsetOf(raw, lines, v.Line, v.Column)
	// An anchor (&name) or a tag (!!str) before the value stays.
	for start < len(raw) && (raw[start] == '&' || raw[start] == '!') {
		for start < len(raw) && raw[start] != ' ' && raw[start] != '\t' && raw[start] != '\n' {
			start++
		}
		for start < len(raw) && (raw[start] == ' ' || raw[start] == '\t' || raw[start] == '\n' || raw[start] == '\r') {
			start++
		}
	}
	i := start
	switch {
	case v.Style&yaml.DoubleQuotedStyle != 0 && i < len(raw) && raw[i] == '"':
		for i++; i < len(raw); i++ {
			if raw[i] == '\\' {
				i++
				continue
			}
			if raw[i] == '"' {
				end = i + 1
				return start, end, bytes.Contains(raw[start:end], []byte("\n"))
			}
		}
		return start, len(raw), true
	case v.Style&yaml.SingleQuotedStyle != 0 && i < len(raw) && raw[i] == '\'':
		for i++; i < len(raw); i++ {
			if raw[i] == '\'' {
				if i+1 < len(raw) && raw[i+1] == '\'' {
					i++
					continue
				}
				end = i + 1
				return start, end, bytes.Contains(raw[start:end], []byte("\n"))
			}
		}
		return start, len(raw), true
	}
	// Plain or block: to the end of the first line, then through deeper
	// indented continuation lines.
	for i < len(raw) && raw[i] != '\n' {
		if raw[i] == '#' && i > start && (raw[i-1] == ' ' || raw[i-1] == '\t') {
			break
		}
		if flow && (raw[i] == ',' || raw[i] == ']' || raw[i] == '}') {
			break
		}
		i++
	}
	end = i
	for end > start && (raw[end-1] == ' ' || raw[end-1] == '\t') {
		end--
	}
	block := v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if flow || (!block && strings.TrimSpace(string(raw[start:end])) == v.Value) {
		return start, end, false
	}
	// Continuation lines.
	for i < len(raw) {
		next := i + 1 // past '\n'
		j := next
		for j < len(raw) && raw[j] == ' ' {
			j++
		}
		if j < len(raw) && raw[j] != '\n' && j-next <= keyIndent {
			break
		}
		for j < len(raw) && raw[j] != '\n' {
			j++
		}
		if j >= len(raw) && j == next {
			break
		}
		if strings.TrimSpace(string(raw[next:j])) != "" {
			end = j
		}
		i = j
		if i >= len(raw) {
			break
		}
	}
	return start, end, true
}

// MaskSecrets returns raw with every secret value's token replaced by
// "•••" (quoted), and the key paths of the values masked. A text that is
// not YAML is an error: nothing of it may be shown.
func MaskSecrets(raw []byte) ([]byte, error) {
	return maskWith(raw, func(secretToken) string { return `"` + Masked + `"` })
}

func maskWith(raw []byte, repl func(secretToken) string) ([]byte, error) {
	toks, _, err := secretTokens(raw)
	if err != nil {
		return nil, err
	}
	return replaceTokens(raw, toks, repl), nil
}

// replaceTokens replaces each token (in text order) with repl's answer;
// aliases are left as they are.
func replaceTokens(raw []byte, toks []secretToken, repl func(secretToken) string) []byte {
	sort.Slice(toks, func(i, j int) bool { return toks[i].start < toks[j].start })
	var b bytes.Buffer
	prev := 0
	for _, t := range toks {
		if t.alias || t.start < prev {
			continue
		}
		b.Write(raw[prev:t.start])
		b.WriteString(repl(t))
		prev = t.end
	}
	b.Write(raw[prev:])
	return b.Bytes()
}

// EditError is a problem with an edited config text: the line (1-based,
// 0 when unknown), the key (dotted path, may be empty) and the message.
type EditError struct {
	Line int
	Key  string
	Msg  string
}

func (e *EditError) Error() string {
	switch {
	case e.Line > 0 && e.Key != "":
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.Key != "":
		return e.Key + ": " + e.Msg
	}
	return e.Msg
}

// RestoreSecrets returns edited with every secret value left as "•••" set
// back to the value at the same key in current (the file in force),
// written as it is written there; a secret given a new value is kept as
// typed. The answer lists the keys whose secret changed (a value other
// than "•••" that differs from current's). A "•••" where current has no
// secret is an *EditError wrapping ErrMaskedUnknown; edited that is not
// YAML is an *EditError with the parser's line.
func RestoreSecrets(current, edited []byte) ([]byte, []string, error) {
	curToks, _, err := secretTokens(current)
	if err != nil {
		return nil, nil, fmt.Errorf("the file in force: %w", err)
	}
	byPath := map[string]secretToken{}
	for _, t := range curToks {
		byPath[strings.Join(t.path, "\x00")] = t
	}
	toks, _, err := secretTokens(edited)
	if err != nil {
		return nil, nil, yamlEditError(err)
	}
	var changed []string
	for _, t := range toks {
		if t.alias {
			continue
		}
		c, ok := byPath[strings.Join(t.path, "\x00")]
		if t.value == Masked {
			if !ok || c.alias {
				return nil, nil, &EditError{Line: t.line, Key: strings.Join(t.path, "."), Msg: ErrMaskedUnknown.Error()}
			}
			continue
		}
		if !ok || c.value != t.value {
			changed = append(changed, strings.Join(t.path, "."))
		}
	}
	out := replaceTokens(edited, toks, func(t secretToken) string {
		if t.value != Masked {
			return string(edited[t.start:t.end])
		}
		c := byPath[strings.Join(t.path, "\x00")]
		if !c.multiline {
			return string(current[c.start:c.end])
		}
		return quoteYAML(c.value)
	})
	return out, changed, nil
}

// quoteYAML writes s as a double-quoted YAML scalar (JSON strings are).
func quoteYAML(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// MaskChanged masks edited for display beside the masked file in force:
// secrets as "•••", and those listed in changed (RestoreSecrets) as
// "••• (changed)", so a diff shows that they change but not to what.
func MaskChanged(edited []byte, changed []string) ([]byte, error) {
	ch := map[string]bool{}
	for _, c := range changed {
		ch[c] = true
	}
	return maskWith(edited, func(t secretToken) string {
		if ch[strings.Join(t.path, ".")] {
			return `"` + Masked + ` (changed)"`
		}
		return `"` + Masked + `"`
	})
}

// KeyLine returns the line (1-based) of a dotted key path in a config
// text, or of the deepest part of it found; 0 when none is. Map keys may
// themselves contain dots (metric globs, host names).
func KeyLine(raw []byte, key string) int {
	var doc yaml.Node
	if key == "" || yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	var find func(n *yaml.Node, rest string) int
	find = func(n *yaml.Node, rest string) int {
		switch n.Kind {
		case yaml.MappingNode:
			best := 0
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				switch {
				case k.Value == rest:
					return k.Line
				case strings.HasPrefix(rest, k.Value+"."):
					if l := find(n.Content[i+1], rest[len(k.Value)+1:]); l > 0 {
						return l
					}
					if best == 0 {
						best = k.Line
					}
				}
			}
			return best
		case yaml.SequenceNode:
			idx, tail, _ := strings.Cut(rest, ".")
			i, err := strconv.Atoi(idx)
			if err != nil || i < 0 || i >= len(n.Content) {
				return 0
			}
			if tail == "" {
				return n.Content[i].Line
			}
			if l := find(n.Content[i], tail); l > 0 {
				return l
			}
			return n.Content[i].Line
		}
		return 0
	}
	return find(doc.Content[0], key)
}

// yamlEditError turns a YAML parser error into an *EditError with its line.
func yamlEditError(err error) *EditError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &EditError{Line: line, Msg: "invalid YAML: " + msg}
}

// AsEditError describes err (from Validate of text) for the editor: the
// key and message of an *Error with the key's line in text, or the line a
// YAML syntax error names.
func AsEditError(text []byte, err error) *EditError {
	var ee *EditError
	if errors.As(err, &ee) {
		ee.Msg = oneLine(ee.Msg)
		return ee
	}
	var ce *Error
	if errors.As(err, &ce) {
		e := &EditError{Key: ce.Key, Msg: oneLine(ce.Msg), Line: KeyLine(text, ce.Key)}
		if ce.Key == "" {
			if m := yamlLineRE.FindStringSubmatch(ce.Msg); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
			}
		}
		return e
	}
	return &EditError{Msg: oneLine(err.Error())}
}

// oneLine joins a multi-line parser message into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ScrubSecrets replaces in msg every secret value of the texts given
// (those of 4 bytes or more) with "•••": an error message about a text
// must not carry its secrets.
func ScrubSecrets(msg string, texts ...[]byte) string {
	var vals []string
	for _, t := range texts {
		toks, _, err := secretTokens(t)
		if err != nil {
			continue
		}
		for _, tk := range toks {
			if len(tk.value) >= 4 && tk.value != Masked {
				vals = append(vals, tk.value)
			}
		}
	}
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, v := range vals {
		msg = strings.ReplaceAll(msg, v, Masked)
	}
	return msg
}
