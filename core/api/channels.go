package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/sdk"
)

// MaxChannelBody bounds the request body of a channel create or update.
const MaxChannelBody = 64 << 10

// maxChannelKeyLen bounds a key of a channel request body.
const maxChannelKeyLen = 64

// Channels is the channel registry behind the channel endpoints;
// *channels.Registry provides it. Access rules (visibility, ownership,
// read-only config channels) and masking live in the registry; the
// handlers only translate HTTP.
type Channels interface {
	ChannelTypes() map[string]sdk.Schema
	ListChannels(pr access.Principal, covered map[string][]string) []channels.View
	CreateChannel(ctx context.Context, pr access.Principal, in channels.Input) error
	UpdateChannel(ctx context.Context, pr access.Principal, name string, in channels.Input) error
	DeleteChannel(ctx context.Context, pr access.Principal, name string) error
	TestChannel(ctx context.Context, pr access.Principal, name string) error
}

// ChannelCoverage tells, per channel name, the known hosts whose alerts
// the channel receives now; *dispatch.Dispatcher provides it.
type ChannelCoverage interface {
	Coverage() map[string][]string
}

// AddChannels registers the notification channel endpoints served by ch,
// with the coverage cov reports in the channel list (nil: none). The
// daemon calls it once, before the server starts.
func (s *Server) AddChannels(ch Channels, cov ChannelCoverage) {
	h := &channelHandlers{ch: ch, cov: cov}
	s.Add(
		Route{Method: http.MethodGet, Path: "/api/0/notification_channel_types", Access: Authenticated, Handler: h.types},
		Route{Method: http.MethodGet, Path: "/api/0/notification_channels", Access: Authenticated, Handler: h.list},
		Route{Method: http.MethodPost, Path: "/api/0/notification_channels", Access: Authenticated, Handler: h.create},
		Route{Method: http.MethodPut, Path: "/api/0/notification_channels/:name", Access: Authenticated, Handler: h.update},
		Route{Method: http.MethodDelete, Path: "/api/0/notification_channels/:name", Access: Authenticated, Handler: h.delete},
		Route{Method: http.MethodPost, Path: "/api/0/notification_channels/:name/test", Access: Authenticated, Handler: h.test},
	)
}

type channelHandlers struct {
	ch  Channels
	cov ChannelCoverage
}

// ChannelTypeJSON is one entry of GET /api/0/notification_channel_types.
type ChannelTypeJSON struct {
	Label  string             `json:"label"`
	Fields []ChannelFieldJSON `json:"fields"`
}

// ChannelFieldJSON describes one field of a channel type.
type ChannelFieldJSON struct {
	Key      string `json:"key"`
	Label    string `json:"label"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Default  string `json:"default"`
	Help     string `json:"help"`
	// Options lists the allowed values of a "choice" field (absent for
	// other types).
	Options []ChannelOptionJSON `json:"options,omitempty"`
}

// ChannelOptionJSON is one allowed value of a choice field.
type ChannelOptionJSON struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// ChannelProblemJSON says why a stored channel no longer passes its
// type's checks.
type ChannelProblemJSON struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Since   string `json:"since"`
}

// ChannelJSON is one entry of GET /api/0/notification_channels.
type ChannelJSON struct {
	Name        string             `json:"name"`
	Type        string             `json:"type"`
	TypeLabel   string             `json:"type_label"`
	Owner       *string            `json:"owner"`
	Private     bool               `json:"private"`
	MinLevel    string             `json:"min_level"`
	Hosts       []string           `json:"hosts"`
	Fields      []ChannelValueJSON `json:"fields"`
	Source      string             `json:"source"`
	TypeMissing bool               `json:"type_missing"`
	// CoveredHosts names, sorted, the known hosts (watchhosts and hosts
	// that reported) whose alerts the channel receives now and that the
	// caller may see, at most channels.MaxCoveredHosts; CoveredCount
	// counts them (beyond that bound too).
	CoveredHosts []string `json:"covered_hosts"`
	CoveredCount int      `json:"covered_count"`
	// Problem is null, or why the stored channel no longer passes its
	// type's checks (its plugin was replaced by a stricter version).
	Problem *ChannelProblemJSON `json:"problem"`
}

// ChannelValueJSON is one field value of a channel; secrets are "•••".
type ChannelValueJSON struct {
	Key       string `json:"key"`
	Label     string `json:"label"`
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive"`
}

func callerOf(c echo.Context) access.Principal {
	p := PrincipalOf(c)
	return access.Principal{User: p.User, Admin: p.Admin, Open: p.Open}
}

func (h *channelHandlers) types(c echo.Context) error {
	out := map[string]ChannelTypeJSON{}
	for name, s := range h.ch.ChannelTypes() {
		t := ChannelTypeJSON{Label: s.Label, Fields: []ChannelFieldJSON{}}
		for _, f := range s.Fields {
			fj := ChannelFieldJSON{Key: f.Key, Label: f.Label, Type: f.Type, Required: f.Required, Default: f.Default, Help: f.Help}
			for _, o := range f.Options {
				label := o.Label
				if label == "" {
					label = o.Value
				}
				fj.Options = append(fj.Options, ChannelOptionJSON{Value: o.Value, Label: label})
			}
			t.Fields = append(t.Fields, fj)
		}
		out[name] = t
	}
	return c.JSON(http.StatusOK, out)
}

func (h *channelHandlers) list(c echo.Context) error {
	var covered map[string][]string
	if h.cov != nil {
		covered = h.cov.Coverage()
	}
	views := h.ch.ListChannels(callerOf(c), covered)
	out := make([]ChannelJSON, 0, len(views))
	for _, v := range views {
		j := ChannelJSON{Name: v.Name, Type: v.Type, TypeLabel: v.TypeLabel, Private: v.Private, MinLevel: v.MinLevel, Hosts: v.Hosts,
			Fields: make([]ChannelValueJSON, 0, len(v.Fields)), Source: v.Source, TypeMissing: v.TypeMissing,
			CoveredHosts: v.CoveredHosts, CoveredCount: v.CoveredCount}
		if j.CoveredHosts == nil {
			j.CoveredHosts = []string{}
		}
		if v.Owner != "" {
			owner := v.Owner
			j.Owner = &owner
		}
		if p := v.Problem; p != nil {
			j.Problem = &ChannelProblemJSON{Field: p.Field, Message: p.Message, Since: p.Since.UTC().Format(time.RFC3339)}
		}
		for _, f := range v.Fields {
			j.Fields = append(j.Fields, ChannelValueJSON{Key: f.Key, Label: f.Label, Value: f.Value, Sensitive: f.Sensitive})
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

func (h *channelHandlers) create(c echo.Context) error {
	in, err := readChannelInput(c)
	if err != nil {
		return err
	}
	if err := h.ch.CreateChannel(c.Request().Context(), callerOf(c), in); err != nil {
		return channelError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "name": in.Name})
}

func (h *channelHandlers) update(c echo.Context) error {
	in, err := readChannelInput(c)
	if err != nil {
		return err
	}
	if err := h.ch.UpdateChannel(c.Request().Context(), callerOf(c), c.Param("name"), in); err != nil {
		return channelError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

func (h *channelHandlers) delete(c echo.Context) error {
	if err := h.ch.DeleteChannel(c.Request().Context(), callerOf(c), c.Param("name")); err != nil {
		return channelError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

func (h *channelHandlers) test(c echo.Context) error {
	if err := h.ch.TestChannel(c.Request().Context(), callerOf(c), c.Param("name")); err != nil {
		return channelError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// channelError maps the channel service's errors to status codes; their
// messages are written for the caller and hold no secret.
func channelError(err error) error {
	var de *channels.Error
	if !errors.As(err, &de) {
		return err
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, channels.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, channels.ErrForbidden), errors.Is(err, channels.ErrReadOnly):
		status = http.StatusForbidden
	case errors.Is(err, channels.ErrExists):
		status = http.StatusConflict
	case errors.Is(err, channels.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, channels.ErrUnavailable):
		status = http.StatusServiceUnavailable
	case errors.Is(err, channels.ErrDelivery):
		status = http.StatusBadGateway
	}
	he := Errorf(status, "%s", de.Msg)
	if de.Field != "" {
		return &FieldError{HTTPError: he, Field: de.Field}
	}
	return he
}

// readChannelInput decodes a create or update body: the channel settings
// (name, type, min_level, private, hosts) and the type's fields, all at
// the top level. A "fields" list shaped like the GET answer is accepted
// too (top-level keys win), so a client may send back what it read.
// Read-only keys of the GET answer are ignored.
func readChannelInput(c echo.Context) (channels.Input, error) {
	in := channels.Input{Fields: map[string]string{}}
	body, err := readJSONObject(c, MaxChannelBody, fmt.Sprintf("Request body is larger than %d KiB", MaxChannelBody>>10))
	if err != nil {
		return in, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return in, Errorf(http.StatusBadRequest, "Request body must be a JSON object")
	}
	if dec.More() {
		return in, Errorf(http.StatusBadRequest, "Request body must be a single JSON object")
	}
	if raw == nil {
		return in, Errorf(http.StatusBadRequest, "Request body must be a JSON object")
	}
	if len(raw) > channels.MaxFields+len(sdk.ReservedKeys)+5 { // + source, type_missing, covered_hosts, covered_count, problem
		return in, Errorf(http.StatusBadRequest, "Too many fields (at most %d)", channels.MaxFields)
	}
	str := func(key string, v json.RawMessage) (string, bool, error) {
		if isNull(v) {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, Errorf(http.StatusBadRequest, "Field '%s' must be a string", key)
		}
		return s, true, nil
	}
	if v, ok := raw["fields"]; ok && !isNull(v) {
		var list []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(v, &list); err != nil {
			return in, Errorf(http.StatusBadRequest, "Field 'fields' must be a list of {\"key\": ..., \"value\": ...}")
		}
		if len(list) > channels.MaxFields {
			return in, Errorf(http.StatusBadRequest, "Too many fields (at most %d)", channels.MaxFields)
		}
		for _, f := range list {
			if f.Key == "" || len(f.Key) > maxChannelKeyLen {
				return in, Errorf(http.StatusBadRequest, "Field 'fields' has an entry without a valid key")
			}
			val, err := fieldValue(f.Key, f.Value)
			if err != nil {
				return in, err
			}
			in.Fields[f.Key] = val
		}
	}
	for key, v := range raw {
		if len(key) > maxChannelKeyLen {
			return in, Errorf(http.StatusBadRequest, "Unknown field '%s…'", key[:maxChannelKeyLen])
		}
		switch key {
		case "name":
			s, _, err := str(key, v)
			if err != nil {
				return in, err
			}
			in.Name = strings.TrimSpace(s)
		case "type":
			s, _, err := str(key, v)
			if err != nil {
				return in, err
			}
			in.Type = strings.TrimSpace(s)
		case "min_level":
			s, ok, err := str(key, v)
			if err != nil {
				return in, err
			}
			if ok {
				in.MinLevel = &s
			}
		case "private":
			if isNull(v) {
				continue
			}
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return in, Errorf(http.StatusBadRequest, "Field 'private' must be true or false")
			}
			in.Private = &b
		case "hosts":
			if isNull(v) {
				continue
			}
			var list []string
			if err := json.Unmarshal(v, &list); err != nil {
				var s string
				if json.Unmarshal(v, &s) != nil {
					return in, Errorf(http.StatusBadRequest, "Field 'hosts' must be a list of host globs")
				}
				list = splitList(s)
			}
			for _, h := range list {
				if !safetext.Valid(h) {
					return in, Errorf(http.StatusBadRequest, "Field 'hosts' must hold host globs of printable text (no control or bidirectional formatting characters)")
				}
			}
			in.Hosts = &list
		case "fields", "owner", "type_label", "source", "type_missing", "covered_hosts", "covered_count", "problem":
			// read-only parts of the GET answer; the owner is the creator
		default:
			if strings.HasPrefix(key, "_") {
				// Keys starting with "_" belong to the daemon (the
				// destination policy travels as sdk.DestinationsKey).
				return in, Errorf(http.StatusBadRequest, "Field '%s' is reserved for the daemon", clipName(key))
			}
			val, err := fieldValue(key, v)
			if err != nil {
				return in, err
			}
			in.Fields[key] = val
		}
	}
	return in, nil
}

// fieldValue turns a JSON value of a type field into the string the
// plugin receives: numbers and booleans in their JSON spelling, a list of
// strings joined with commas, null as empty.
func fieldValue(key string, v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if isNull(v) {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", Errorf(http.StatusBadRequest, "Field '%s' must be a string", clipName(key))
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return "", Errorf(http.StatusBadRequest, "Field '%s' must be a string", clipName(key))
		}
		if b {
			return "true", nil
		}
		return "false", nil
	case '[':
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return "", Errorf(http.StatusBadRequest, "Field '%s' must be a string or a list of strings", clipName(key))
		}
		return strings.Join(list, ","), nil
	case '{':
		return "", Errorf(http.StatusBadRequest, "Field '%s' must be a string, number or boolean", clipName(key))
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return "", Errorf(http.StatusBadRequest, "Field '%s' must be a string, number or boolean", clipName(key))
	}
	return n.String(), nil
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
