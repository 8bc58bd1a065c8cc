package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/config"
)

// AlertSource is what the alert endpoints read and change: the alert
// evaluator (*alert.Evaluator) in the daemon, a fake in tests.
type AlertSource interface {
	// HostAlerts returns every evaluated metric of a host.
	HostAlerts(host string) []alert.Status
	// ActiveAlerts returns every state that is not OK, most severe first.
	ActiveAlerts() []alert.Status
	// EvaluatedHosts returns the hosts being evaluated.
	EvaluatedHosts() []string
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
}

// HostManagerChecker is an optional capability of a Guard: whether p may
// manage host (acknowledge and silence its alerts). Without it the API
// derives the answer from Deps.HostAccess (owner or manager) and the
// principal's admin and open-mode flags.
type HostManagerChecker interface {
	CanManage(p Principal, host string) bool
}

// maxAlertBody bounds the JSON body of the alert write endpoints.
const maxAlertBody = 16 << 10

// AlertRoutes returns the alert and silence endpoints served from src. The
// daemon registers them once the evaluator exists:
//
//	srv.Add(srv.AlertRoutes(evaluator)...)
func (s *Server) AlertRoutes(src AlertSource) []Route {
	a := &alertHandlers{s: s, src: src}
	return []Route{
		{Method: http.MethodGet, Path: "/api/0/hosts/:hostname/alerts", Access: HostMonitor, Handler: a.hostAlerts},
		{Method: http.MethodPost, Path: "/api/0/hosts/:hostname/alerts/ack", Access: HostManager, Handler: a.ack},
		{Method: http.MethodGet, Path: "/api/0/alerts", Access: Authenticated, Handler: a.activeAlerts},
		{Method: http.MethodGet, Path: "/api/0/silences", Access: Authenticated, Handler: a.listSilences},
		{Method: http.MethodPost, Path: "/api/0/silences", Access: Authenticated, Handler: a.addSilence},
		{Method: http.MethodDelete, Path: "/api/0/silences/:id", Access: Authenticated, Handler: a.removeSilence},
	}
}

type alertHandlers struct {
	s   *Server
	src AlertSource
}

// AlertJSON is one alert of GET /api/0/hosts/{hostname}/alerts: the
// reference's fields plus acknowledged, silenced_until (unix seconds or
// null) and flapping.
type AlertJSON struct {
	MetricPath        string   `json:"metric_path"`
	Level             string   `json:"level"`
	Since             float64  `json:"since"`
	LastValue         float64  `json:"last_value"`
	LastCheck         float64  `json:"last_check"`
	NotificationCount int      `json:"notification_count"`
	Acknowledged      bool     `json:"acknowledged"`
	SilencedUntil     *float64 `json:"silenced_until"`
	Flapping          bool     `json:"flapping"`
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

// ActiveAlertsJSON is the body of GET /api/0/alerts.
type ActiveAlertsJSON struct {
	Alerts  []ActiveAlertJSON `json:"alerts"`
	Summary struct {
		Critical int `json:"critical"`
		Warning  int `json:"warning"`
		Unknown  int `json:"unknown"`
		Total    int `json:"total"`
	} `json:"summary"`
	HostCount int `json:"host_count"`
}

// SilenceJSON is a silence as the API shows it.
type SilenceJSON struct {
	ID        string  `json:"id"`
	Host      string  `json:"host"`
	Metric    string  `json:"metric"`
	Created   float64 `json:"created"`
	Until     float64 `json:"until"`
	CreatedBy *string `json:"created_by"`
	Comment   string  `json:"comment"`
}

func alertJSON(st alert.Status) AlertJSON {
	a := AlertJSON{
		MetricPath: st.MetricPath, Level: st.Level, Since: st.Since, LastValue: st.LastValue,
		LastCheck: st.LastCheck, NotificationCount: st.NotificationCount,
		Acknowledged: st.Acknowledged, Flapping: st.Flapping,
	}
	if st.SilencedUntil > 0 {
		u := st.SilencedUntil
		a.SilencedUntil = &u
	}
	return a
}

func silenceJSON(sl alert.Silence) SilenceJSON {
	out := SilenceJSON{ID: sl.ID, Host: sl.Host, Metric: sl.Metric, Created: sl.Created, Until: sl.Until, Comment: sl.Comment}
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
		out.Alerts = append(out.Alerts, alertJSON(st))
		n.add(st.Level)
	}
	out.Summary.OK, out.Summary.Warning, out.Summary.Critical, out.Summary.Unknown = n.ok, n.warning, n.critical, n.unknown
	return c.JSON(http.StatusOK, out)
}

// levelCounts counts alerts by level for the summaries.
type levelCounts struct{ ok, warning, critical, unknown int }

func (n *levelCounts) add(level string) {
	switch level {
	case config.LevelOK:
		n.ok++
	case config.LevelWarning:
		n.warning++
	case config.LevelCritical:
		n.critical++
	default:
		n.unknown++
	}
}

func (a *alertHandlers) activeAlerts(c echo.Context) error {
	p := PrincipalOf(c)
	visible := map[string]bool{}
	out := ActiveAlertsJSON{Alerts: []ActiveAlertJSON{}}
	for _, h := range a.src.EvaluatedHosts() {
		if a.s.deps.Guard.CanSee(p, h) {
			visible[h] = true
			out.HostCount++
		}
	}
	var n levelCounts
	for _, st := range a.src.ActiveAlerts() {
		if visible[st.Host] {
			out.Alerts = append(out.Alerts, ActiveAlertJSON{Hostname: st.Host, AlertJSON: alertJSON(st)})
			n.add(st.Level)
		}
	}
	out.Summary.Critical, out.Summary.Warning, out.Summary.Unknown = n.critical, n.warning, n.unknown
	out.Summary.Total = len(out.Alerts)
	return c.JSON(http.StatusOK, out)
}

// decodeBody reads a bounded JSON object into v.
func decodeBody(c echo.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxAlertBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxAlertBody)
		}
		return Errorf(http.StatusBadRequest, "cannot read body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
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
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "alert": alertJSON(st)})
}

// canManage reports whether p may acknowledge and silence host's alerts.
func (s *Server) canManage(p Principal, host string) bool {
	if p.Open || p.Admin {
		return true
	}
	if m, ok := s.deps.Guard.(HostManagerChecker); ok {
		return m.CanManage(p, host)
	}
	if p.User == "" {
		return false
	}
	owner, managers, _ := s.deps.HostAccess(host)
	return owner == p.User || slices.Contains(managers, p.User)
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
func (s *Server) mayChangeSilence(p Principal, sl alert.Silence) bool {
	if p.Open || p.Admin {
		return true
	}
	hosts := s.silenceHosts(sl)
	if len(hosts) == 0 {
		return false
	}
	for _, h := range hosts {
		if !s.canManage(p, h) {
			return false
		}
	}
	return true
}

// maySeeSilence: administrators, its creator, and whoever can see a host
// it matches.
func (s *Server) maySeeSilence(p Principal, sl alert.Silence) bool {
	if p.Open || p.Admin || (p.User != "" && sl.CreatedBy == p.User) {
		return true
	}
	for _, h := range s.silenceHosts(sl) {
		if s.deps.Guard.CanSee(p, h) {
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
		Comment  string          `json:"comment"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	d, err := silenceDuration(req.Duration)
	if err != nil {
		return err
	}
	p := PrincipalOf(c)
	spec := alert.SilenceSpec{
		Host: strings.TrimSpace(req.Host), Metric: strings.TrimSpace(req.Metric),
		Duration: d, Comment: req.Comment, By: p.User,
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

// Interface guards.
var _ AlertSource = (*alert.Evaluator)(nil)
