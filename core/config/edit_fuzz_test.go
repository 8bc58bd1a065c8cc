package config

import (
	"strings"
	"testing"
)

// FuzzMaskSecrets: whatever the text, a masked text shows no secret value
// (each secret key reads "•••" when parsed again), and restoring the
// masked text against the original gives back every secret value.
func FuzzMaskSecrets(f *testing.F) {
	f.Add([]byte("enroll_key: plain-value # c\nmetrics_token: 'a''b'\nstore: {dsn: \"x\\\"y\"}\n"))
	f.Add([]byte("watchhosts:\n  web01: {key: flowkey, owner: a}\n  db: {key: [a, b]}\n"))
	f.Add([]byte("watchhosts:\n  web01:\n    key: |\n      block\n      more\n    owner: x\n"))
	f.Add([]byte("watchhosts:\n  web01:\n    key: plain\n      continued\n    owner: x\n"))
	f.Add([]byte("notification_channels:\n  ops:\n    type: webhook\n    url: \"multi\n      line\"\n    hosts: [a]\n"))
	f.Add([]byte("users:\n  a: {password_hash: &h hash}\n  b: {password_hash: *h}\n"))
	f.Add([]byte("enroll_key: >-\n  folded\n  text\n\nother: 1\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		toks, _, err := secretTokens(raw)
		if err != nil {
			return
		}
		masked, err := MaskSecrets(raw)
		if err != nil {
			t.Fatalf("mask: %v", err)
		}
		mtoks, _, err := secretTokens(masked)
		if err != nil {
			t.Fatalf("the masked text is not YAML: %v\n%s", err, masked)
		}
		got := map[string]string{}
		for _, m := range mtoks {
			if !m.alias {
				got[strings.Join(m.path, ".")] = m.value
			}
		}
		for _, tk := range toks {
			if tk.alias {
				continue
			}
			if v, ok := got[strings.Join(tk.path, ".")]; !ok || v != Masked {
				t.Fatalf("%s reads %q after masking:\n%s\n---\n%s", strings.Join(tk.path, "."), v, raw, masked)
			}
		}
		restored, changed, err := RestoreSecrets(raw, masked)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if len(changed) != 0 {
			t.Fatalf("restoring the masked text changes %v", changed)
		}
		rtoks, _, err := secretTokens(restored)
		if err != nil {
			t.Fatalf("the restored text is not YAML: %v\n%s", err, restored)
		}
		want := map[string]string{}
		for _, tk := range toks {
			if !tk.alias {
				want[strings.Join(tk.path, ".")] = tk.value
			}
		}
		for _, r := range rtoks {
			if w, ok := want[strings.Join(r.path, ".")]; ok && w != r.value {
				t.Fatalf("%s restored as %q, was %q:\n%s\n---\n%s", strings.Join(r.path, "."), r.value, w, raw, restored)
			}
		}
	})
}
