package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPermanentSurvivesWrapping(t *testing.T) {
	base := errors.New("bad token")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"marked then wrapped", fmt.Errorf("pushover: %w", Permanent(base)), true},
		{"context deadline", context.DeadlineExceeded, false},
		{"remote permanent", Permanent(&RemoteError{Message: "x"}), true},
		{"remote retryable", &RemoteError{Message: "x"}, false},
		{"http 401", &HTTPStatusError{StatusCode: 401}, true},
		{"http 503", &HTTPStatusError{StatusCode: 503}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent hides the wrapped error from errors.Is")
	}
}

func TestHTTPErrorClassifiesStatus(t *testing.T) {
	tests := []struct {
		code          int
		wantErr, perm bool
	}{
		{200, false, false}, {204, false, false},
		{302, true, true},
		{400, true, true}, {401, true, true}, {403, true, true}, {404, true, true},
		{408, true, false}, {425, true, false}, {429, true, false},
		{500, true, false}, {502, true, false}, {503, true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.code, Body: io.NopCloser(strings.NewReader("  the\tservice\nsays\x00no "))}
			err := HTTPError(resp)
			if (err != nil) != tt.wantErr || IsPermanent(err) != tt.perm {
				t.Fatalf("HTTPError(%d) = %v (permanent %v), want error %v permanent %v", tt.code, err, IsPermanent(err), tt.wantErr, tt.perm)
			}
			if err != nil && !strings.HasSuffix(err.Error(), ": the service says no") {
				t.Errorf("message %q does not quote the one-line body", err)
			}
		})
	}
}

func TestHTTPErrorCutsLongBodies(t *testing.T) {
	resp := &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader(strings.Repeat("é", 10000)))}
	var se *HTTPStatusError
	if !errors.As(HTTPError(resp), &se) || len([]rune(se.Body)) != 201 {
		t.Fatalf("body not cut to 200 runes + ellipsis: %d", len([]rune(se.Body)))
	}
}

func TestDoHTTPKeepsURLSecretsOutOfErrors(t *testing.T) {
	const secret = "tok3nInTheQuery"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)

	tests := []struct {
		name     string
		url      string
		deadline bool
	}{
		{"connection refused", "http://" + closed + "/hook/" + secret + "?token=" + secret, false},
		{"timeout", slow.URL + "/hook/" + secret + "?token=" + secret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tt.url, nil)
			err := DoHTTP(HTTPClient(5*time.Second), req)
			if err == nil {
				t.Fatal("DoHTTP succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the URL: %v", err)
			}
			if IsPermanent(err) {
				t.Errorf("transport error %v marked permanent", err)
			}
			if tt.deadline && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout error %v does not match context.DeadlineExceeded", err)
			}
		})
	}
}

func TestParseHTTPURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://api.pushover.net/1/messages.json": true,
		"http://127.0.0.1:8080/x?y=1":              true,
		"ftp://example.com":                        false,
		"example.com/hook":                         false,
		"https://":                                 false,
		"%zz":                                      false,
	} {
		if _, err := ParseHTTPURL(raw); (err == nil) != ok {
			t.Errorf("ParseHTTPURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
	if _, err := ParseHTTPURL("ftp://user:hunter22@x"); strings.Contains(err.Error(), "hunter22") {
		t.Error("error repeats the URL")
	}
}
