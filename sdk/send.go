package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds how much of a service's answer [Send] reads: enough for
// any JSON answer a notification service gives, small enough to hold.
const maxAnswer = 64 << 10

// CallOption adjusts one call of [Send], [SendJSON], [PostJSON] or
// [PostForm]. Options apply in order; a later header option overrides an
// earlier one.
type CallOption func(*call)

// call is what the options of one Send say.
type call struct {
	header    http.Header
	answer    any
	quote     []string
	retryPath string
	retryUnit time.Duration
}

// Header sets request header name to value, replacing a value set by the
// helper or an earlier option (Content-Type, User-Agent). An empty value
// sets nothing, which keeps optional credentials short to write:
// Header("Authorization", bearer) with bearer "" when there is no token.
func Header(name, value string) CallOption {
	return func(c *call) {
		if value != "" {
			c.header.Set(name, value)
		}
	}
}

// Headers sets every header of h on the request, each name replacing the
// values set before it (for operator-configured headers).
func Headers(h http.Header) CallOption {
	return func(c *call) {
		for name, values := range h {
			c.header[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
		}
	}
}

// DecodeAnswer decodes the JSON body of the service's answer into v, for
// services that say more than the status code: Slack's {"ok": false},
// Pushover's {"status": 1}, Telegram's "parameters". A 2xx answer that is
// not JSON gives a retryable "unreadable answer" error; for any other
// answer v is filled when the body is JSON and the error is the usual
// status error. At most 64 KiB of the answer is read.
func DecodeAnswer(v any) CallOption { return func(c *call) { c.answer = v } }

// QuoteJSON makes the error for a non-2xx answer quote the strings (or
// numbers) at the given paths of its JSON body, joined with ": ", instead
// of the start of the raw body: QuoteJSON("description") for Telegram,
// QuoteJSON("errcode", "error") for Matrix. A path is a dotted list of
// object keys ("error.message"). When the body is not JSON or holds none
// of the paths, the raw body is quoted as without the option.
func QuoteJSON(paths ...string) CallOption { return func(c *call) { c.quote = paths } }

// RetryAfterJSON reads the wait a 429 or 503 answer asks for from its JSON
// body when it has no Retry-After header: the number at path (a dotted
// list of object keys) counted in unit. Telegram says
// RetryAfterJSON("parameters.retry_after", time.Second), Matrix
// RetryAfterJSON("retry_after_ms", time.Millisecond) and Discord
// RetryAfterJSON("retry_after", time.Second) (fractions are kept, rounded
// up). A Retry-After header wins over the body. Waits above
// [MaxRetryAfter] are cut to it; a missing, zero or negative number leaves
// the wait to the daemon.
func RetryAfterJSON(path string, unit time.Duration) CallOption {
	return func(c *call) { c.retryPath, c.retryUnit = path, unit }
}

// PostJSON encodes v as JSON and POSTs it to target with client; see
// [SendJSON].
func PostJSON(ctx context.Context, client *http.Client, target string, v any, opts ...CallOption) error {
	return SendJSON(ctx, client, http.MethodPost, target, v, opts...)
}

// SendJSON encodes v as JSON and sends it to target with method, with
// Content-Type application/json (unless an option sets another); see
// [Send]. An unencodable v is a permanent error.
func SendJSON(ctx context.Context, client *http.Client, method, target string, v any, opts ...CallOption) error {
	body, err := json.Marshal(v)
	if err != nil {
		return Permanent(fmt.Errorf("encode request: %w", err))
	}
	return Send(ctx, client, method, target, body, append([]CallOption{Header("Content-Type", "application/json")}, opts...)...)
}

// PostForm POSTs form, URL-encoded with Content-Type
// application/x-www-form-urlencoded (unless an option sets another), to
// target; see [Send].
func PostForm(ctx context.Context, client *http.Client, target string, form url.Values, opts ...CallOption) error {
	return Send(ctx, client, http.MethodPost, target, []byte(form.Encode()),
		append([]CallOption{Header("Content-Type", "application/x-www-form-urlencoded")}, opts...)...)
}

// Send sends body to target with method through client (use one from
// [HTTPClient], so the call obeys the channel's destination policy) under
// ctx, and turns the outcome into nil or an error a notifier can return
// as is:
//
//   - a target that is no URL: a permanent error wrapping [ErrBadURL],
//     without the target (it may hold a token);
//   - no answer (refused, reset, timed out, ctx ended): a retryable error
//     from [RequestError], without the URL;
//   - a 2xx answer: nil, or with [DecodeAnswer] the decoding error;
//   - any other answer: an [*HTTPStatusError] classified as by [HTTPError]
//     (4xx permanent except 408, 425 and 429), quoting the answer (see
//     [QuoteJSON]), and for a 429 or 503 marked with [RetryAfter] when a
//     Retry-After header or, with [RetryAfterJSON], the body names a wait.
//
// It sets [UserAgent] unless an option sets a User-Agent, reads at most
// 64 KiB of the answer, and drains and closes the response body. Wrap the
// error with the service's name (fmt.Errorf("matrix: %w", err)); the
// marks survive wrapping.
func Send(ctx context.Context, client *http.Client, method, target string, body []byte, opts ...CallOption) error {
	c := call{header: http.Header{"User-Agent": {UserAgent}}}
	for _, o := range opts {
		o(&c)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("build request: %w", ErrBadURL))
	}
	for name, values := range c.header {
		req.Header[name] = values
	}
	resp, err := client.Do(req)
	if err != nil {
		return RequestError(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
	}()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if c.answer == nil {
			return nil
		}
		if readErr != nil {
			return WithReason(RequestError(readErr), ReasonFailed)
		}
		if err := json.Unmarshal(raw, c.answer); err != nil {
			return WithReason(fmt.Errorf("unreadable answer: %w", err), ReasonFailed)
		}
		return nil
	}
	if c.answer != nil {
		_ = json.Unmarshal(raw, c.answer)
	}
	return c.statusError(resp, raw)
}

// statusError builds the error for a non-2xx answer with body raw.
func (c *call) statusError(resp *http.Response, raw []byte) error {
	var doc any
	parsed := (len(c.quote) > 0 || c.retryPath != "") && json.Unmarshal(raw, &doc) == nil
	quote := ""
	if parsed {
		var parts []string
		for _, p := range c.quote {
			if s := jsonText(jsonAt(doc, p)); s != "" {
				parts = append(parts, s)
			}
		}
		quote = strings.Join(parts, ": ")
	}
	if quote == "" {
		quote = string(raw[:min(len(raw), 4<<10)])
	}
	err := &HTTPStatusError{StatusCode: resp.StatusCode, Body: oneLine(quote, 200)}
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return err
	}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return RetryAfter(err, d)
	}
	if parsed && c.retryPath != "" {
		if n, ok := jsonAt(doc, c.retryPath).(float64); ok && n > 0 {
			wait := n * float64(c.retryUnit)
			if wait >= float64(MaxRetryAfter) {
				return RetryAfter(err, MaxRetryAfter)
			}
			return RetryAfter(err, time.Duration(math.Ceil(wait)))
		}
	}
	return err
}

// jsonAt returns the value at the dotted path in doc, or nil.
func jsonAt(doc any, path string) any {
	for _, key := range strings.Split(path, ".") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[key]
	}
	return doc
}

// jsonText returns a JSON string or number as text, else "".
func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// Truncate returns s cut to at most max runes, ending in "…" when cut; it
// never splits a multi-byte character. max < 1 gives "". Use it for the
// length limits services put on titles and texts (counted in characters).
func Truncate(s string, max int) string {
	if max < 1 {
		return ""
	}
	if len(s) <= max { // bytes ≥ runes: short enough
		return s
	}
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
