package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/safetext"
	"github.com/hbdmon/hbd/sdk/level"
)

// AlertSource is what the alert endpoints read and change: the alert
// evaluator (*alert.Evaluator) in the daemon, a fake in tests.
type AlertSource interface {
	// HostAlerts returns every evaluated metric of a host.
	HostAlerts(host string) []alert.Status
	// ActivePage returns a page of the states that are not OK, most
	// severe first, with the counts of every visible one.
	ActivePage(q alert.AlertQuery) alert.AlertPage
	// EvaluatedHostCount counts the evaluated hosts visible accepts (nil:
	// all).
	EvaluatedHostCount(visible func(host string) bool) int
	// Ack acknowledges a host's metric (alert.ErrUnknownMetric,
	// alert.ErrNotAlerting).
	Ack(ctx context.Context, host, metric, by string) (alert.Status, error)
	// AddSilence creates a silence (alert.ErrInvalid).
	AddSilence(ctx context.Context, spec alert.SilenceSpec) (alert.Silence, error)
	// Silence returns an active silence by id.
	Silence(id string) (alert.Silence, bool)
	// Silences returns the active silences.
	Silences() []alert.Silence
	// RemoveSilence ends a silence (alert.ErrUnknownSilence).
	RemoveSilence(ctx context.Context, id, by string) error
	// Windows returns the configured maintenance windows.
	Windows() []alert.Window
}

// DeliveryStatus reports what became of the notifications of an alert
// episode: how many deliveries succeeded and the episode's delivery
// status ("" nothing dispatched, "no channel", "pending", "delivered",
// "failed"). The notification dispatcher (*dispatch.Dispatcher) provides
// it; episodeStart is alert.Event.EpisodeStart, the moment the metric left
// OK.
type DeliveryStatus interface {
	EpisodeStatus(host, metric string, episodeStart time.Time) (delivered int, status string)
}

// maxAlertBody bounds the JSON body of the alert write endpoints.
const maxAlertBody = 16 << 10

// AlertRoutes returns the alert, alert history and silence endpoints
// served from src and the store. deliveries, when given and not nil (the
// notification dispatcher), says what became of each episode's
// notifications; without it notification_count is the evaluator's count
// and delivery is empty. The daemon registers them once the evaluator
// exists:
//
//	srv.Add(srv.AlertRoutes(evaluator, dispatcher)...)
func (s *Server) AlertRoutes(src AlertSource, deliveries ...DeliveryStatus) []Route {
	a := &alertHandlers{s: s, src: src}
	for _, d := range deliveries {
		if d != nil {
			a.deliveries = d
		}
	}
	return []Route{
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/alerts", Access: HostMonitor, Handler: a.hostAlerts},
		{Method: http.MethodPost, Path: "/api/0/hosts/:hostname/alerts/ack", Access: HostManager, Handler: a.ack},
		{Method: http.MethodGet, Path: "/api/0/alerts", Access: Authenticated, Handler: a.activeAlerts},
		// Host filtering happens in the handler, as for /api/0/alerts.
		{Method: http.MethodGet, Path: "/api/0/alerts/history", Access: Authenticated, Handler: a.history},
		{Method: http.MethodGet, Path: "/api/0/silences", Access: Authenticated, Handler: a.listSilences},
		{Method: http.MethodPost, Path: "/api/0/silences", Access: Authenticated, Handler: a.addSilence},
		{Method: http.MethodDelete, Path: "/api/0/silences/:id", Access: Authenticated, Handler: a.removeSilence},
		{Method: http.MethodGet, Path: "/api/0/maintenance", Access: Authenticated, Handler: a.listWindows},
	}
}

type alertHandlers struct {
	s          *Server
	src        AlertSource
	deliveries DeliveryStatus // nil without a dispatcher
}

// AlertJSON is one alert of GET /api/0/hosts/{hostname}/alerts: the
// reference's fields plus acknowledged, silenced_until (unix seconds or
// null), flapping, text (the state in words), episode_start (when the
// metric left OK, unix seconds; null while OK) and delivery (what became of
// the episode's notifications: "" nothing dispatched, "no channel",
// "pending", "delivered" or "failed"). With a dispatcher,
// notification_count counts the episode's successful deliveries.
type AlertJSON struct {
	MetricPath        string      `json:"metric_path"`
	Level             level.Level `json:"level"`
	Since             float64     `json:"since"`
	LastValue         float64     `json:"last_value"`
	LastCheck         float64     `json:"last_check"`
	NotificationCount int         `json:"notification_count"`
	Acknowledged      bool        `json:"acknowledged"`
	SilencedUntil     *float64    `json:"silenced_until"`
	Flapping          bool        `json:"flapping"`
	Text              string      `json:"text"`
	EpisodeStart      *float64    `json:"episode_start"`
	Delivery          string      `json:"delivery"`
}

// ActiveAlertJSON is one alert of GET /api/0/alerts: AlertJSON led by the
// host name.
type ActiveAlertJSON struct {
	Hostname string `json:"hostname"`
	AlertJSON
}

// HostAlertsJSON is the body of GET /api/0/hosts/{hostname}/alerts.
type HostAlertsJSON struct {
	Hostname string      `json:"hostname"`
	Alerts   []AlertJSON `json:"alerts"`
	Summary  struct {
		OK       int `json:"ok"`
		Warning  int `json:"warning"`
		Critical int `json:"critical"`
		Unknown  int `json:"unknown"`
	} `json:"summary"`
}

// ActiveAlertsJSON is the body of GET /api/0/alerts. summary counts every
// non-OK alert of the hosts the caller may see (whatever the filters and
// the page), host_count the evaluated hosts the caller may see; page is
// there only when a query parameter (limit, offset, level, host) is given.
type ActiveAlertsJSON struct {
	Alerts  []ActiveAlertJSON `json:"alerts"`
	Summary struct {
		Critical int `json:"critical"`
		Warning  int `json:"warning"`
		Unknown  int `json:"unknown"`
		Total    int `json:"total"`
	} `json:"summary"`
	HostCount int       `json:"host_count"`
	Page      *PageJSON `json:"page,omitempty"`
}

// PageJSON is the page object of GET /api/0/alerts with query parameters:
// the offset and limit applied (limit null: none), matched (how many
// alerts the level and host filters select, before offset and limit) and
// next (the offset of the following page, null on the last).
type PageJSON struct {
	Offset  int  `json:"offset"`
	Limit   *int `json:"limit"`
	Matched int  `json:"matched"`
	Next    *int `json:"next"`
}

// Limits of GET /api/0/alerts?limit=: larger values are capped.
const MaxActiveAlertLimit = 1000

// SilenceJSON is a silence as the API shows it.
type SilenceJSON struct {
	ID        string  `json:"id"`
	Host      string  `json:"host"`
	Metric    string  `json:"metric"`
	Created   float64 `json:"created"`
	StartsAt  float64 `json:"starts_at"`
	Until     float64 `json:"until"`
	CreatedBy *string `json:"created_by"`
	Comment   string  `json:"comment"`
}

// WindowJSON is a configured maintenance window as the API shows it.
type WindowJSON struct {
	Name     string   `json:"name"`
	Host     string   `json:"host"`
	Metric   string   `json:"metric"`
	Days     []string `json:"days"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
	TimeZone string   `json:"time_zone"`
	Comment  string   `json:"comment"`
	Active   bool     `json:"active"`
	// NextStart and NextEnd bound the current (when active) or next
	// occurrence, unix seconds.
	NextStart float64 `json:"next_start"`
	NextEnd   float64 `json:"next_end"`
}

// alertJSON shapes a state; the dispatcher, when wired, tells what became
// of the notifications of its episode.
func (a *alertHandlers) alertJSON(st alert.Status) AlertJSON {
	out := AlertJSON{
		MetricPath: st.MetricPath, Level: st.Level, Since: st.Since, LastValue: st.LastValue,
		LastCheck: st.LastCheck, NotificationCount: st.NotificationCount,
		Acknowledged: st.Acknowledged, Flapping: st.Flapping, Text: st.Text,
	}
	if st.SilencedUntil > 0 {
		u := st.SilencedUntil
		out.SilencedUntil = &u
	}
	if st.EpisodeStart > 0 {
		e := st.EpisodeStart
		out.EpisodeStart = &e
		if a.deliveries != nil {
			out.NotificationCount, out.Delivery = a.deliveries.EpisodeStatus(st.Host, st.MetricPath, unixTime(e))
		}
	}
	return out
}

// unixTime turns unix seconds into the time the evaluator gives its
// events (alert.Event.EpisodeStart), so episode lookups match exactly.
func unixTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func silenceJSON(sl alert.Silence) SilenceJSON {
	out := SilenceJSON{ID: sl.ID, Host: sl.Host, Metric: sl.Metric, Created: sl.Created, StartsAt: sl.Starts, Until: sl.Until, Comment: sl.Comment}
	if out.StartsAt == 0 {
		out.StartsAt = sl.Created
	}
	if sl.CreatedBy != "" {
		by := sl.CreatedBy
		out.CreatedBy = &by
	}
	return out
}

func (a *alertHandlers) hostAlerts(c echo.Context) error {
	host, err := a.s.hostParam(c)
	if err != nil {
		return err
	}
	out := HostAlertsJSON{Hostname: host, Alerts: []AlertJSON{}}
	var n levelCounts
	for _, st := range a.src.HostAlerts(host) {
		out.Alerts = append(out.Alerts, a.alertJSON(st))
		n.add(st.Level)
	}
	out.Summary.OK, out.Summary.Warning, out.Summary.Critical, out.Summary.Unknown = n.ok, n.warning, n.critical, n.unknown
	return c.JSON(http.StatusOK, out)
}

// levelCounts counts alerts by level for the summaries.
type levelCounts struct{ ok, warning, critical, unknown int }

func (n *levelCounts) add(lv level.Level) {
	switch lv {
	case level.OK:
		n.ok++
	case level.Warning:
		n.warning++
	case level.Critical:
		n.critical++
	default:
		n.unknown++
	}
}

// activeAlerts serves GET /api/0/alerts?limit=&offset=&level=&host=: the
// non-OK alerts of the hosts the caller may see, most severe first, then
// oldest first. level keeps CRITICAL, WARNING or UNKNOWN (comma-separated
// for several, any case); host keeps the hosts a glob matches (* and ?,
// see core/glob); offset skips that many of the selected alerts; limit
// (1 to MaxActiveAlertLimit, larger values capped) lists at most that
// many. Without parameters the answer is the reference's. The answer
// carries an ETag of its body; If-None-Match with it gets 304.
func (a *alertHandlers) activeAlerts(c echo.Context) error {
	q, paged, err := activeQuery(c)
	if err != nil {
		return err
	}
	p := PrincipalOf(c)
	if !a.s.policy.IsAdmin(p) {
		q.Visible = func(h string) bool { return a.s.policy.CanSee(p, h) }
	}
	page := a.src.ActivePage(q)
	out := ActiveAlertsJSON{Alerts: make([]ActiveAlertJSON, 0, len(page.Alerts)), HostCount: a.src.EvaluatedHostCount(q.Visible)}
	var n levelCounts
	for _, st := range page.Alerts {
		out.Alerts = append(out.Alerts, ActiveAlertJSON{Hostname: st.Host, AlertJSON: a.alertJSON(st)})
		n.add(st.Level)
	}
	if paged {
		out.Summary.Critical, out.Summary.Warning, out.Summary.Unknown = page.Summary.Critical, page.Summary.Warning, page.Summary.Unknown
		out.Summary.Total = page.Summary.Total()
		pj := &PageJSON{Offset: q.Offset, Matched: page.Matched}
		if q.Limit > 0 {
			pj.Limit = &q.Limit
			if next := q.Offset + q.Limit; next < page.Matched {
				pj.Next = &next
			}
		}
		out.Page = pj
	} else {
		// The whole list: the summary counts exactly what is listed.
		out.Summary.Critical, out.Summary.Warning, out.Summary.Unknown = n.critical, n.warning, n.unknown
		out.Summary.Total = len(out.Alerts)
	}
	return jsonWithETag(c, out)
}

// activeQuery reads the query parameters of GET /api/0/alerts; paged
// reports whether any was given.
func activeQuery(c echo.Context) (q alert.AlertQuery, paged bool, err error) {
	for _, name := range [...]string{"limit", "offset", "level", "host"} {
		if c.QueryParam(name) != "" {
			paged = true
		}
	}
	if q.Limit, err = intParam(c, "limit", 0, MaxActiveAlertLimit); err != nil {
		return q, paged, err
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return q, paged, Errorf(http.StatusBadRequest, "offset must be a non-negative integer, got '%s'", clipName(v))
		}
		q.Offset = n
	}
	if v := c.QueryParam("level"); v != "" {
		for _, word := range strings.Split(v, ",") {
			lv := level.Level(strings.ToUpper(word))
			if lv != level.Critical && lv != level.Warning && lv != level.Unknown {
				return q, paged, Errorf(http.StatusBadRequest, "level must be CRITICAL, WARNING or UNKNOWN (comma-separated for several), got '%s'", clipName(v))
			}
			q.Levels = append(q.Levels, lv)
		}
	}
	if v := c.QueryParam("host"); v != "" {
		pat, ok := hostGlob(v)
		if !ok {
			return q, paged, Errorf(http.StatusBadRequest, "host must be a host name or a glob of one (* and ?), got '%s'", clipName(v))
		}
		q.Host = pat.Match
	}
	return q, paged, nil
}

// hostGlob compiles a host filter: a glob that could match a host name
// (with its wildcards read as letters, it is a valid host name).
func hostGlob(v string) (glob.Pattern, bool) {
	if !config.ValidHostName(strings.NewReplacer("*", "a", "?", "a").Replace(v)) {
		return glob.Pattern{}, false
	}
	pat, err := glob.Compile(v)
	return pat, err == nil
}

// jsonWithETag answers v as JSON with a strong ETag of the body (see
// blobWithETag).
func jsonWithETag(c echo.Context, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return blobWithETag(c, append(body, '\n')) // as c.JSON writes it
}

// blobWithETag answers the JSON body with a strong ETag of it (a hash:
// equal bodies, equal tags), and 304 without a body when the request's
// If-None-Match names it. Answers vary by caller, so caches keep them
// private and revalidate.
func blobWithETag(c echo.Context, body []byte) error {
	sum := sha256.Sum256(body)
	tag := `"` + hex.EncodeToString(sum[:12]) + `"`
	h := c.Response().Header()
	h.Set("ETag", tag)
	h.Set("Cache-Control", "private, no-cache")
	for _, t := range strings.Split(c.Request().Header.Get("If-None-Match"), ",") {
		if t = strings.TrimSpace(t); t == tag || t == "W/"+tag || t == "*" {
			return c.NoContent(http.StatusNotModified)
		}
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

// decodeBody reads a bounded JSON object into v, refusing unknown fields
// and trailing data.
func decodeBody(c echo.Context, v any) error {
	body, err := readJSONObject(c, maxAlertBody, fmt.Sprintf("request body larger than %d bytes", maxAlertBody))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.Decode(&json.RawMessage{}) != io.EOF {
		return Errorf(http.StatusBadRequest, "request body must hold one JSON object")
	}
	return nil
}

// maxSilenceGlob bounds a silence's host and metric globs: host names
// have at most 253 bytes, metric paths protocol.MaxPathLength.
const maxSilenceGlob = 256

// checkSilenceText refuses a silence field that is too long or holds
// control or bidirectional formatting characters, which can never match
// a host or metric and would be stored and shown.
func checkSilenceText(field, v string, limit int) error {
	if len(v) > limit {
		return Errorf(http.StatusBadRequest, "%s longer than %d bytes", field, limit)
	}
	if !safetext.Valid(v) {
		return Errorf(http.StatusBadRequest, "%s must be printable text (no control or bidirectional formatting characters)", field)
	}
	return nil
}

func (a *alertHandlers) ack(c echo.Context) error {
	host, err := a.s.hostParam(c)
	if err != nil {
		return err
	}
	var req struct {
		MetricPath string `json:"metric_path"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.MetricPath == "" {
		return Errorf(http.StatusBadRequest, "metric_path is required")
	}
	st, err := a.src.Ack(c.Request().Context(), host, req.MetricPath, PrincipalOf(c).User)
	switch {
	case errors.Is(err, alert.ErrUnknownMetric):
		return Errorf(http.StatusNotFound, "Metric '%s' has no alert state on host '%s'", clipName(req.MetricPath), host)
	case errors.Is(err, alert.ErrNotAlerting):
		return Errorf(http.StatusConflict, "Metric '%s' on host '%s' is OK: nothing to acknowledge", clipName(req.MetricPath), host)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "alert": a.alertJSON(st)})
}

// silenceHosts returns the known hosts a silence's host glob matches.
func (s *Server) silenceHosts(sl alert.Silence) []string {
	var out []string
	for _, h := range s.HostNames() {
		if alert.SilenceMatchesHost(sl, h) {
			out = append(out, h)
		}
	}
	return out
}

// mayChangeSilence: administrators always; others when they manage every
// known host the silence's host glob matches, and it matches at least one.
func (s *Server) mayChangeSilence(p access.Principal, sl alert.Silence) bool {
	if s.policy.IsAdmin(p) {
		return true
	}
	hosts := s.silenceHosts(sl)
	if len(hosts) == 0 {
		return false
	}
	for _, h := range hosts {
		if !s.policy.CanManage(p, h) {
			return false
		}
	}
	return true
}

// maySeeSilence: administrators, its creator, and whoever can see a host
// it matches.
func (s *Server) maySeeSilence(p access.Principal, sl alert.Silence) bool {
	if s.policy.IsAdmin(p) || (p.User != "" && sl.CreatedBy == p.User) {
		return true
	}
	for _, h := range s.silenceHosts(sl) {
		if s.policy.CanSee(p, h) {
			return true
		}
	}
	return false
}

func (a *alertHandlers) listSilences(c echo.Context) error {
	p := PrincipalOf(c)
	out := []SilenceJSON{}
	for _, sl := range a.src.Silences() {
		if a.s.maySeeSilence(p, sl) {
			out = append(out, silenceJSON(sl))
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (a *alertHandlers) addSilence(c echo.Context) error {
	var req struct {
		Host     string          `json:"host"`
		Metric   string          `json:"metric"`
		Duration json.RawMessage `json:"duration"`
		StartsAt json.RawMessage `json:"starts_at"`
		Comment  string          `json:"comment"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	d, err := silenceDuration(req.Duration)
	if err != nil {
		return err
	}
	starts, err := silenceStart(req.StartsAt)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		limit   int
	}{{"host", req.Host, maxSilenceGlob}, {"metric", req.Metric, maxSilenceGlob}, {"comment", req.Comment, alert.MaxCommentBytes}} {
		if err := checkSilenceText(f.name, f.v, f.limit); err != nil {
			return err
		}
	}
	p := PrincipalOf(c)
	spec := alert.SilenceSpec{
		Host: strings.TrimSpace(req.Host), Metric: strings.TrimSpace(req.Metric),
		Duration: d, Starts: starts, Comment: req.Comment, By: p.User,
	}
	if err := spec.Validate(); err != nil {
		return invalid(err)
	}
	if !a.s.mayChangeSilence(p, alert.Silence{Host: spec.Host}) {
		return Errorf(http.StatusForbidden, "You may only silence hosts you manage, and host '%s' must match at least one of them", clipName(spec.Host))
	}
	sl, err := a.src.AddSilence(c.Request().Context(), spec)
	if errors.Is(err, alert.ErrInvalid) {
		return invalid(err)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "silence": silenceJSON(sl)})
}

// invalid turns an alert.ErrInvalid into a 400 with its reason.
func invalid(err error) error {
	return Errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), alert.ErrInvalid.Error()+": "))
}

// silenceDuration accepts "2h", "30m", "1d" or a number of seconds.
func silenceDuration(raw json.RawMessage) (time.Duration, error) {
	bad := Errorf(http.StatusBadRequest, "duration is required: e.g. \"2h\", \"30m\", \"1d\" or seconds, at most %s", alert.MaxSilence)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, bad
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		var secs float64
		if err := json.Unmarshal(raw, &secs); err != nil {
			return 0, bad
		}
		text = fmt.Sprint(secs)
	}
	d, err := config.ParseDuration(text)
	if err != nil || d <= 0 || d > alert.MaxSilence {
		return 0, bad
	}
	return d, nil
}

// silenceStart reads starts_at: absent or null (now), unix seconds or an
// RFC 3339 time.
func silenceStart(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	bad := Errorf(http.StatusBadRequest, "starts_at must be unix seconds or an RFC 3339 time such as \"2026-03-01T02:00:00Z\", within %s from now", alert.MaxSilence)
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		t, err := time.Parse(time.RFC3339, text)
		if err != nil {
			return time.Time{}, bad
		}
		return t, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil || secs < 0 || secs > 1e11 || math.IsNaN(secs) {
		return time.Time{}, bad
	}
	return unixTime(secs), nil
}

func (a *alertHandlers) listWindows(c echo.Context) error {
	p := PrincipalOf(c)
	out := []WindowJSON{}
	for _, w := range a.src.Windows() {
		if !a.s.maySeeSilence(p, alert.Silence{Host: w.Host}) {
			continue
		}
		days := w.Days
		if days == nil {
			days = []string{}
		}
		tz := w.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		metric := w.Metric
		if metric == "" {
			metric = "**"
		}
		out = append(out, WindowJSON{
			Name: w.Name, Host: w.Host, Metric: metric, Days: days, Start: w.Start, End: w.End,
			TimeZone: tz, Comment: w.Comment, Active: w.Active,
			NextStart: float64(w.NextStart.Unix()), NextEnd: float64(w.NextEnd.Unix()),
		})
	}
	return c.JSON(http.StatusOK, out)
}

func (a *alertHandlers) removeSilence(c echo.Context) error {
	id := c.Param("id")
	p := PrincipalOf(c)
	sl, ok := a.src.Silence(id)
	if !ok || !a.s.maySeeSilence(p, sl) {
		return Errorf(http.StatusNotFound, "Silence '%s' not found", clipName(id))
	}
	if !(p.User != "" && sl.CreatedBy == p.User) && !a.s.mayChangeSilence(p, sl) {
		return Errorf(http.StatusForbidden, "Only its creator, an administrator or a manager of every host it matches may remove silence '%s'", sl.ID)
	}
	err := a.src.RemoveSilence(c.Request().Context(), id, p.User)
	if errors.Is(err, alert.ErrUnknownSilence) {
		return Errorf(http.StatusNotFound, "Silence '%s' not found", clipName(id))
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true})
}

// Limits of GET /api/0/alerts/history.
const (
	DefaultEpisodeLimit = 50
	MaxEpisodeLimit     = 1000
)

// EpisodeJSON is one alert episode of GET /api/0/alerts/history: from the
// moment a metric left OK until it was OK again. Times are unix seconds;
// end is null while the episode is open, and duration_s then counts up to
// now. peak_value is the worst value (the highest; the lowest for a
// `below` threshold; for heartbeat metrics 1 LATE, 2 DOWN), null when the
// episode saw no value (UNKNOWN only). acknowledged_by is null when nobody
// acknowledged it. deliveries counts the successful deliveries of its
// notifications and delivery says what became of them ("" nothing
// dispatched or no dispatcher, "no channel", "pending", "delivered",
// "failed"). text is the episode's worst moment in words.
type EpisodeJSON struct {
	Hostname       string      `json:"hostname"`
	MetricPath     string      `json:"metric_path"`
	WorstLevel     level.Level `json:"worst_level"`
	Start          float64     `json:"start"`
	End            *float64    `json:"end"`
	DurationS      float64     `json:"duration_s"`
	PeakValue      *float64    `json:"peak_value"`
	AcknowledgedBy *string     `json:"acknowledged_by"`
	Deliveries     int         `json:"deliveries"`
	Delivery       string      `json:"delivery"`
	Text           string      `json:"text"`
}

// EpisodesJSON is the body of GET /api/0/alerts/history. next is the
// cursor of the following page (pass it as before=), null on the last.
type EpisodesJSON struct {
	Episodes []EpisodeJSON `json:"episodes"`
	Next     *string       `json:"next"`
}

// history serves GET /api/0/alerts/history?host=&since=&until=&state=&limit=&before=:
// the alert episodes of the hosts the caller may see, newest (latest
// start) first. host selects one host (403 when the caller may not see
// it); since and until (unix seconds or RFC 3339) select the episodes
// overlapping that window; state is "open" or "resolved" (default both);
// limit is 1 to 1000 (default 50, larger values are capped); before is
// the next cursor of the previous page.
func (a *alertHandlers) history(c echo.Context) error {
	q := alert.EpisodeQuery{}
	var err error
	if q.Limit, err = intParam(c, "limit", DefaultEpisodeLimit, MaxEpisodeLimit); err != nil {
		return err
	}
	if q.Since, err = timeParam(c.QueryParam("since"), "since", 0); err != nil {
		return err
	}
	if q.Until, err = timeParam(c.QueryParam("until"), "until", 0); err != nil {
		return err
	}
	if q.Until > 0 && q.Until < q.Since {
		return Errorf(http.StatusBadRequest, "until must not be before since")
	}
	switch q.State = c.QueryParam("state"); q.State {
	case alert.EpisodesAll, alert.EpisodesOpen, alert.EpisodesResolved:
	default:
		return Errorf(http.StatusBadRequest, "state must be 'open' or 'resolved', got '%s'", clipName(q.State))
	}
	if v := c.QueryParam("before"); v != "" {
		cur, ok := parseCursor(v)
		if !ok {
			return Errorf(http.StatusBadRequest, "before must be the 'next' value of a previous page, got '%s'", clipName(v))
		}
		q.After = &cur
	}
	p := PrincipalOf(c)
	if host := c.QueryParam("host"); host != "" {
		if !config.ValidHostName(host) {
			return Errorf(http.StatusBadRequest, "host must be a host name, got '%s'", clipName(host))
		}
		// Access first: a caller who may not read a host learns nothing
		// of it.
		if !a.s.policy.CanSee(p, host) {
			return Errorf(http.StatusForbidden, "You may not read host '%s'", clipName(host))
		}
		q.Host = host
	} else if !a.s.policy.IsAdmin(p) {
		q.Hosts = []string{}
		for _, name := range a.s.HostNames() {
			if a.s.policy.CanSee(p, name) {
				q.Hosts = append(q.Hosts, name)
			}
		}
	}
	// One more than asked tells whether there is a next page.
	limit := q.Limit
	q.Limit++
	eps, err := a.s.deps.Store.Episodes(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := EpisodesJSON{Episodes: make([]EpisodeJSON, 0, min(len(eps), limit))}
	if len(eps) > limit {
		eps = eps[:limit]
		last := eps[limit-1]
		next := formatCursor(alert.EpisodeCursor{Start: last.Start, ID: last.ID})
		out.Next = &next
	}
	now := float64(time.Now().UnixNano()) / 1e9
	for _, ep := range eps {
		out.Episodes = append(out.Episodes, a.episodeJSON(ep, now))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *alertHandlers) episodeJSON(ep alert.Episode, now float64) EpisodeJSON {
	out := EpisodeJSON{
		Hostname: ep.Host, MetricPath: ep.Metric, WorstLevel: ep.WorstLevel, Start: ep.Start,
		DurationS: max(now-ep.Start, 0), Text: ep.Text,
	}
	if !ep.Open() {
		end := ep.End
		out.End = &end
		out.DurationS = max(end-ep.Start, 0)
	}
	if ep.HasPeak {
		peak := ep.Peak
		out.PeakValue = &peak
	}
	if ep.AckBy != "" {
		by := ep.AckBy
		out.AcknowledgedBy = &by
	}
	if a.deliveries != nil {
		out.Deliveries, out.Delivery = a.deliveries.EpisodeStatus(ep.Host, ep.Metric, unixTime(ep.Start))
	}
	return out
}

// formatCursor writes a page position as "<start>:<id>".
func formatCursor(c alert.EpisodeCursor) string {
	return strconv.FormatFloat(c.Start, 'f', -1, 64) + ":" + strconv.FormatInt(c.ID, 10)
}

func parseCursor(v string) (alert.EpisodeCursor, bool) {
	start, id, ok := strings.Cut(v, ":")
	if !ok {
		return alert.EpisodeCursor{}, false
	}
	s, err1 := strconv.ParseFloat(start, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) || n < 1 {
		return alert.EpisodeCursor{}, false
	}
	return alert.EpisodeCursor{Start: s, ID: n}, true
}

// Interface guards.
var _ AlertSource = (*alert.Evaluator)(nil)
