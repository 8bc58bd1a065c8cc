package api

import (
	"strings"
	"testing"
)

// TestCheckObjectKeys pins what the duplicate-key check of request bodies
// refuses: a key twice in the same object at any depth, and a first value
// that is not an object. Equal keys in different objects are fine, and
// syntax errors are left to the decoders.
func TestCheckObjectKeys(t *testing.T) {
	for body, want := range map[string]string{
		`{"a":1,"a":2}`:                     "names 'a' twice",
		`{"a":{"b":1,"b":2}}`:               "names 'b' twice",
		`{"a":[{"b":1,"c":{"d":1,"d":1}}]}`: "names 'd' twice",
		`{"a":[1,{"x":1}],"b":{},"a":0}`:    "names 'a' twice",
		`{"a\u0000":1,"a\u0000":2}`:         "names 'a\uFFFD' twice",
		``:                                  "must be a JSON object",
		` `:                                 "must be a JSON object",
		`null`:                              "must be a JSON object",
		`[{"a":1}]`:                         "must be a JSON object",
		`"{}"`:                              "must be a JSON object",
		`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`: "",
		`{"a":"a","b":["a","a"],"c":{"a":"a"}}`:     "",
		`{"a":`:                                     "", // the decoder names the syntax error
		`{"a":1}{"a":1}`:                            "", // trailing data: the decoder refuses it
		`{}`:                                        "",
	} {
		err := checkObjectKeys([]byte(body))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", body, err)
		case want != "" && (err == nil || !strings.Contains(cleanMessage(err.Error()), want)):
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}

// TestCleanMessage checks that error messages sent to clients hold no
// control, bidi or invalid characters and stay bounded, cut on a rune
// boundary.
func TestCleanMessage(t *testing.T) {
	for in, want := range map[string]string{
		"Host 'a\x1b[31m' not found": "Host 'a\uFFFD[31m' not found",
		"x\u202Ey\u0085z\xff":        "x\uFFFDy\uFFFDz\uFFFD",
		"plain":                      "plain",
	} {
		if got := cleanMessage(in); got != want {
			t.Errorf("cleanMessage(%q) = %q, want %q", in, got, want)
		}
	}
	long := cleanMessage(strings.Repeat("é", maxErrorMessage))
	if len(long) > maxErrorMessage || !strings.HasSuffix(long, "é…") {
		t.Errorf("long message: %d bytes, ends %q", len(long), long[len(long)-8:])
	}
	if got := clipName(strings.Repeat("é", 40)); len(got) > 64+len("…") || !strings.HasSuffix(got, "é…") {
		t.Errorf("clipName cut a rune: %q", got)
	}
}
