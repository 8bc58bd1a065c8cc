package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hbdmon/hbd/sdk"
)

// answerServer answers every request with status, header and body, and
// records the last request.
type answerServer struct {
	*httptest.Server
	mu     sync.Mutex
	last   *http.Request
	body   []byte
	status int
	header map[string]string
	answer string
}

func newAnswerServer(t *testing.T) *answerServer {
	s := &answerServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.last, s.body = r, b
		status, header, answer := s.status, s.header, s.answer
		s.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *answerServer) respond(status int, header map[string]string, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.header, s.answer = status, header, body
}

func TestPostJSONSendsJSONWithHeaders(t *testing.T) {
	s := newAnswerServer(t)
	client := sdk.HTTPClient(5 * time.Second)
	err := sdk.PostJSON(context.Background(), client, s.URL+"/hook?x=1", map[string]string{"text": "héllo <b>"},
		sdk.Header("Authorization", "Bearer tok"), sdk.Header("X-Empty", ""), sdk.Header("User-Agent", "hbd-notifier-x"))
	if err != nil {
		t.Fatalf("PostJSON = %v", err)
	}
	s.mu.Lock()
	r, body := s.last, s.body
	s.mu.Unlock()
	var got map[string]string
	if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.URL.Query().Get("x") != "1" ||
		json.Unmarshal(body, &got) != nil || got["text"] != "héllo <b>" {
		t.Errorf("request %s %s %s", r.Method, r.URL, body)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer tok" ||
		r.Header.Get("User-Agent") != "hbd-notifier-x" || len(r.Header.Values("X-Empty")) != 0 {
		t.Errorf("headers %v", r.Header)
	}

	// SendJSON with another method, Headers overriding Content-Type, and
	// the default User-Agent.
	h := http.Header{"content-type": {"application/vnd.x+json"}, "X-Team": {"a", "b"}}
	if err := sdk.SendJSON(context.Background(), client, http.MethodPut, s.URL+"/put", 1, sdk.Headers(h)); err != nil {
		t.Fatalf("SendJSON = %v", err)
	}
	s.mu.Lock()
	r = s.last
	s.mu.Unlock()
	if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "application/vnd.x+json" ||
		len(r.Header.Values("X-Team")) != 2 || r.Header.Get("User-Agent") != sdk.UserAgent {
		t.Errorf("PUT %s headers %v", r.Method, r.Header)
	}

	form := url.Values{"token": {"a b"}}
	if err := sdk.PostForm(context.Background(), client, s.URL, form); err != nil {
		t.Fatalf("PostForm = %v", err)
	}
	s.mu.Lock()
	r, body = s.last, s.body
	s.mu.Unlock()
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || string(body) != "token=a+b" {
		t.Errorf("form %q %s", r.Header.Get("Content-Type"), body)
	}
}

func TestSendDecodesAnswers(t *testing.T) {
	s := newAnswerServer(t)
	client := sdk.HTTPClient(5 * time.Second)
	var a struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	s.respond(http.StatusOK, nil, `{"ok":false,"error":"channel_not_found"}`)
	if err := sdk.PostJSON(context.Background(), client, s.URL, nil, sdk.DecodeAnswer(&a)); err != nil || a.OK || a.Error != "channel_not_found" {
		t.Errorf("PostJSON = %v, answer %+v", err, a)
	}
	s.respond(http.StatusOK, nil, `<html>`)
	err := sdk.PostJSON(context.Background(), client, s.URL, nil, sdk.DecodeAnswer(&a))
	if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), "unreadable answer") || sdk.Reason(err) != sdk.ReasonFailed {
		t.Errorf("non-JSON 200: %v (reason %q), want a retryable unreadable answer", err, sdk.Reason(err))
	}
	// An error answer fills the answer too, and keeps its status error.
	a.Error = ""
	s.respond(http.StatusNotFound, nil, `{"ok":false,"error":"not_found"}`)
	err = sdk.PostJSON(context.Background(), client, s.URL, nil, sdk.DecodeAnswer(&a))
	var se *sdk.HTTPStatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !sdk.IsPermanent(err) || a.Error != "not_found" {
		t.Errorf("404: %v, answer %+v", err, a)
	}
	// Without DecodeAnswer a 2xx body is not read for meaning.
	s.respond(http.StatusOK, nil, `<html>`)
	if err := sdk.PostJSON(context.Background(), client, s.URL, nil); err != nil {
		t.Errorf("non-JSON 200 without DecodeAnswer = %v, want nil", err)
	}
}

func TestSendClassifiesFailures(t *testing.T) {
	s := newAnswerServer(t)
	client := sdk.HTTPClient(5 * time.Second)
	for _, c := range []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		opts      []sdk.CallOption
		permanent bool
		quote     string
		notQuote  string
		wait      time.Duration
	}{
		{name: "telegram flood wait", status: 429, body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`,
			opts:  []sdk.CallOption{sdk.QuoteJSON("description"), sdk.RetryAfterJSON("parameters.retry_after", time.Second)},
			quote: "HTTP 429 Too Many Requests: Too Many Requests: retry after 3", notQuote: "error_code", wait: 3 * time.Second},
		{name: "matrix limit", status: 429, body: `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":1500}`,
			opts:  []sdk.CallOption{sdk.QuoteJSON("errcode", "error"), sdk.RetryAfterJSON("retry_after_ms", time.Millisecond)},
			quote: "M_LIMIT_EXCEEDED: Too Many Requests", wait: 1500 * time.Millisecond},
		{name: "discord fraction", status: 429, body: `{"message":"You are being rate limited.","retry_after":0.25,"global":false}`,
			opts:  []sdk.CallOption{sdk.QuoteJSON("message"), sdk.RetryAfterJSON("retry_after", time.Second)},
			quote: "You are being rate limited.", wait: 250 * time.Millisecond},
		{name: "header wins over body", status: 429, header: map[string]string{"Retry-After": "3"}, body: `{"retry_after_ms":500}`,
			opts: []sdk.CallOption{sdk.RetryAfterJSON("retry_after_ms", time.Millisecond)}, quote: "429", wait: 3 * time.Second},
		{name: "503 body wait", status: 503, body: `{"retry_after":2}`,
			opts: []sdk.CallOption{sdk.RetryAfterJSON("retry_after", time.Second)}, quote: "503", wait: 2 * time.Second},
		{name: "huge body wait is bounded", status: 429, body: `{"retry_after":1e12}`,
			opts: []sdk.CallOption{sdk.RetryAfterJSON("retry_after", time.Second)}, quote: "429", wait: sdk.MaxRetryAfter},
		{name: "no wait on a 500", status: 500, body: `{"retry_after":2}`,
			opts: []sdk.CallOption{sdk.RetryAfterJSON("retry_after", time.Second)}, quote: "500"},
		{name: "quote falls back to the raw body", status: 502, body: "<html>502 Bad Gateway</html>",
			opts: []sdk.CallOption{sdk.QuoteJSON("description")}, quote: "<html>502 Bad Gateway</html>"},
		{name: "forbidden is permanent", status: 403, body: `{"message":"Key has no access"}`, permanent: true, quote: "Key has no access"},
		{name: "408 is retryable", status: 408, quote: "408"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.respond(c.status, c.header, c.body)
			err := sdk.PostJSON(context.Background(), client, s.URL, nil, c.opts...)
			if err == nil {
				t.Fatal("PostJSON = nil")
			}
			if sdk.IsPermanent(err) != c.permanent || !strings.Contains(err.Error(), c.quote) ||
				(c.notQuote != "" && strings.Contains(err.Error(), c.notQuote)) {
				t.Errorf("PostJSON = %v (permanent %v), want permanent %v quoting %q", err, sdk.IsPermanent(err), c.permanent, c.quote)
			}
			d, ok := sdk.RetryAfterOf(err)
			if d != c.wait || ok != (c.wait > 0) {
				t.Errorf("retry after %v %v, want %v", d, ok, c.wait)
			}
			if sdk.Reason(err) != sdk.ReasonHTTP(c.status) {
				t.Errorf("reason %q", sdk.Reason(err))
			}
		})
	}
}

func TestSendKeepsTheURLOutOfErrors(t *testing.T) {
	client := sdk.HTTPClient(5 * time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	err = sdk.PostJSON(context.Background(), client, "http://"+addr+"/bot123:SECRETTOKEN/send", nil)
	if err == nil || sdk.IsPermanent(err) || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("refused: %v, want retryable without the path", err)
	}
	err = sdk.PostJSON(context.Background(), client, "http://x/%zzSECRETTOKEN", nil)
	if !errors.Is(err, sdk.ErrBadURL) || !sdk.IsPermanent(err) || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("bad URL: %v", err)
	}
	err = sdk.PostJSON(context.Background(), client, "http://x/", func() {})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "encode") {
		t.Errorf("unencodable: %v", err)
	}
}

func TestSendObeysTheDestinationPolicy(t *testing.T) {
	s := newAnswerServer(t)
	ctx := sdk.WithDestinations(context.Background(), &sdk.Destinations{Restricted: true})
	err := sdk.PostJSON(ctx, sdk.HTTPClient(5*time.Second), s.URL, nil)
	if !errors.Is(err, sdk.ErrDestinationRefused) || !sdk.IsPermanent(err) {
		t.Errorf("PostJSON to loopback under a restricted policy = %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		t.Error("the refused service got a request")
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "hell…"},
		{"ééééé", 5, "ééééé"},
		{"éééééé", 5, "éééé…"},
		{"🔴🔴🔴", 2, "🔴…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"", 3, ""},
	} {
		got := sdk.Truncate(c.in, c.max)
		if got != c.want || !utf8.ValidString(got) || utf8.RuneCountInString(got) > max(c.max, 0) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
