package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/sdk"
)

// FuzzChannelBody feeds arbitrary channel bodies (POST/PUT
// /api/0/notification_channels) through their parse: never a panic; an
// accepted body yields printable host globs, no reserved key among the
// fields (the daemon's destination policy travels as one), and bounded
// sizes; a refused one is an *echo.HTTPError with a 4xx status.
func FuzzChannelBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"ops","type":"webhook","url":"http://x","hosts":["web*"],"min_level":"WARNING"}`,
		`{"name":"p","type":"pushover","token":"•••","private":true,"hosts":[]}`,
		`{"name":"x","type":"webhook","_hbd_destinations":"{}"}`,
		`{"name":"x","type":"webhook","hosts":["a\u0000b"]}`,
		`{"name":"x","name":"y"}`,
		`{"fields":{"a":1},"hosts":null,"private":"yes"}`,
		`[1,2]`, `null`, `{"a":{"b":{"c":[]}}}`,
	} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/0/notification_channels", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		c := e.NewContext(req, httptest.NewRecorder())
		in, err := readChannelInput(c)
		if err != nil {
			he, ok := err.(*echo.HTTPError)
			if !ok || he.Code < 400 || he.Code >= 500 {
				t.Fatalf("refusal %v is not a 4xx", err)
			}
			return
		}
		for k := range in.Fields {
			for _, r := range sdk.ReservedKeys {
				if k == r {
					t.Fatalf("accepted the reserved key %q", k)
				}
			}
			if strings.HasPrefix(k, "_hbd") {
				t.Fatalf("accepted daemon key %q", k)
			}
		}
		if in.Hosts != nil {
			for _, h := range *in.Hosts {
				if !safetext.Valid(h) {
					t.Fatalf("accepted host glob %q", h)
				}
			}
		}
		if len(in.Fields) > 4096 {
			t.Fatalf("accepted %d fields", len(in.Fields))
		}
	})
}
