package pushover

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/sdktest"
)

// forms returns every encoding of secret that must not leave the plugin.
func forms(secret string) map[string]string {
	return map[string]string{
		"raw": secret, "query": url.QueryEscape(secret), "path": url.PathEscape(secret),
		"lower-case query": lowerEscapes(url.QueryEscape(secret)),
		"base64":           base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 raw url":   base64.RawURLEncoding.EncodeToString([]byte(secret)),
	}
}

func assertNoSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		for name, f := range forms(secret) {
			if strings.Contains(s, f) {
				t.Errorf("%s holds the %s form of a secret: %s", what, name, s)
			}
		}
	}
}

// lowerEscapes writes the %XX escapes of s in lower case, as some
// encoders do.
func lowerEscapes(s string) string {
	return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
}

// credentials returns the token and user fields of a posted form, encoded
// as they were posted.
func credentials(form string) string {
	v, _ := url.ParseQuery(form)
	return url.Values{"token": {v.Get("token")}, "user": {v.Get("user")}}.Encode()
}

// TestEchoedFormStaysOutOfErrors is the attack report's leak: a receiver
// that echoes the posted form back in its error answer put the token,
// URL-encoded, into the error the daemon journaled.
func TestEchoedFormStaysOutOfErrors(t *testing.T) {
	const token, user = "tok/with+special chars&x=1", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
	var answer func(form string) (int, string)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code, body := answer(string(b))
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	defer echo.Close()
	h := sdktest.Start(t, New())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := sdk.Config{"token": token, "user": user, "api_url": echo.URL + "/1/messages.json"}

	for _, tt := range []struct {
		name   string
		answer func(form string) (int, string)
		reason string
	}{
		{"form in a 400 body", func(form string) (int, string) { return http.StatusBadRequest, "bad request: " + credentials(form) }, "HTTP 400 from the receiver"},
		{"form lower-cased in a 500 body", func(form string) (int, string) { return 500, lowerEscapes(credentials(form)) }, "HTTP 500 from the receiver"},
		{"fields in a pushover refusal", func(form string) (int, string) {
			v, _ := url.ParseQuery(form)
			return http.StatusOK, `{"status":0,"errors":["token ` + url.QueryEscape(v.Get("token")) + ` is invalid","user ` +
				base64.StdEncoding.EncodeToString([]byte(v.Get("user"))) + ` unknown"]}`
		}, sdk.ReasonRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer = tt.answer
			err := h.Client.Notify(ctx, cfg, critical())
			var re *sdk.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("Notify = %v, want a plugin error", err)
			}
			assertNoSecret(t, "error", err.Error(), token, user)
			if re.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", re.Reason, tt.reason)
			}
		})
	}
	assertNoSecret(t, "plugin log", h.Logs(), token, user)
}
