package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
)

// SilenceSpec is a request to create a silence.
type SilenceSpec struct {
	Host     string // host-name glob (required)
	Metric   string // metric-path glob; "**" (everything) when empty
	Duration time.Duration
	// Starts schedules the silence for later; zero (or a time already
	// past) starts it now. Duration counts from the start.
	Starts  time.Time
	Comment string
	By      string // the user creating it; empty in open mode
}

// MaxCommentBytes bounds a silence comment.
const MaxCommentBytes = 1024

func compileSilence(sl Silence) (silence, error) {
	h, err := glob.Compile(sl.Host)
	if err != nil {
		return silence{}, fmt.Errorf("host: %w", err)
	}
	m, err := glob.Compile(sl.Metric)
	if err != nil {
		return silence{}, fmt.Errorf("metric: %w", err)
	}
	return silence{Silence: sl, host: h, metric: m}, nil
}

// silencedUntil returns the end of the longest active silence or
// maintenance window matching a host's metric, zero when none does.
func (e *Evaluator) silencedUntil(host, metric string, now time.Time) float64 {
	t := toUnix(now)
	var until float64
	e.silMu.RLock()
	for i := range e.silences {
		s := &e.silences[i]
		if s.Starts <= t && s.Until > t && s.Until > until && s.host.Match(host) && s.metric.Match(metric) && e.creatorManages(s, host) {
			until = s.Until
		}
	}
	e.silMu.RUnlock()
	if ws := e.windows.Load(); ws != nil {
		for i := range *ws {
			w := &(*ws)[i]
			if !w.host.Match(host) || !w.metric.Match(metric) {
				continue
			}
			if end, ok := w.sched.Active(now); ok && toUnix(end) > until {
				until = toUnix(end)
			}
		}
	}
	return until
}

// Manager answers whether a configured user may acknowledge and silence a
// host's alerts (*access.Policy).
type Manager interface {
	UserCanManage(user, host string) bool
}

// creatorManages reports whether a silence's creator may silence host (true
// for silences made in open mode or when no MayManage is set).
func (e *Evaluator) creatorManages(s *silence, host string) bool {
	return s.CreatedBy == "" || e.MayManage == nil || e.MayManage.UserCanManage(s.CreatedBy, host)
}

func (e *Evaluator) silenced(st *state, now time.Time) bool {
	return e.silencedUntil(st.host, st.metric, now) > 0
}

func (e *Evaluator) addSilences(list []Status, now time.Time) {
	e.silMu.RLock()
	n := len(e.silences)
	e.silMu.RUnlock()
	if ws := e.windows.Load(); ws != nil {
		n += len(*ws)
	}
	if n == 0 {
		return
	}
	for i := range list {
		list[i].SilencedUntil = e.silencedUntil(list[i].Host, list[i].MetricPath, now)
	}
}

// Validate checks a silence request; problems are ErrInvalid. An empty
// Metric is valid and means every metric.
func (spec SilenceSpec) Validate() error {
	switch {
	case spec.Host == "":
		return fmt.Errorf("%w: host is required (a host name or glob)", ErrInvalid)
	case spec.Duration <= 0:
		return fmt.Errorf("%w: duration must be positive, e.g. \"2h\"", ErrInvalid)
	case spec.Duration > MaxSilence:
		return fmt.Errorf("%w: duration must not exceed %s", ErrInvalid, MaxSilence)
	case !spec.Starts.IsZero() && spec.Starts.Sub(time.Now()) > MaxSilence:
		return fmt.Errorf("%w: starts_at must be within %s from now", ErrInvalid, MaxSilence)
	case len(spec.Comment) > MaxCommentBytes:
		return fmt.Errorf("%w: comment longer than %d bytes", ErrInvalid, MaxCommentBytes)
	}
	if _, err := glob.Compile(spec.Host); err != nil {
		return fmt.Errorf("%w: host: %v", ErrInvalid, err)
	}
	if spec.Metric != "" {
		if _, err := glob.Compile(spec.Metric); err != nil {
			return fmt.Errorf("%w: metric: %v", ErrInvalid, err)
		}
	}
	return nil
}

// addSilence creates a silence, stores it (waiting for the commit) and
// journals it. A request failing Validate is ErrInvalid.
func (e *Evaluator) addSilence(ctx context.Context, spec SilenceSpec) (Silence, error) {
	return e.addSilenceID(ctx, spec, "")
}

// addSilenceID is addSilence with the id chosen by the caller (a
// follower, which picks it before handing the request to the leader);
// when a silence with that id exists already (a command applied again
// after a leader died before recording its result) it is returned as
// it is, so a repeat never creates a second silence.
func (e *Evaluator) addSilenceID(ctx context.Context, spec SilenceSpec, id string) (Silence, error) {
	if err := spec.Validate(); err != nil {
		return Silence{}, err
	}
	if id == "" {
		id = newID()
	} else if sl, ok := e.Silence(id); ok {
		return sl, nil
	}
	if spec.Metric == "" {
		spec.Metric = "**"
	}
	now := e.now()
	start := now
	if spec.Starts.After(now) {
		start = spec.Starts
	}
	sl := Silence{
		ID: id, Host: spec.Host, Metric: spec.Metric,
		Created: toUnix(now), Starts: toUnix(start), Until: toUnix(start.Add(spec.Duration)),
		CreatedBy: spec.By, Comment: spec.Comment,
	}
	c, err := compileSilence(sl)
	if err != nil {
		return Silence{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := e.repo.SaveSilence(ctx, sl); err != nil {
		return Silence{}, err
	}
	e.silMu.Lock()
	e.silences = append(e.silences, c)
	e.silMu.Unlock()
	msg := fmt.Sprintf("silence %s by %s: host %s metric %s until %s", sl.ID, who(spec.By), sl.Host, sl.Metric,
		fromUnix(sl.Until).UTC().Format(time.RFC3339))
	if start.After(now) {
		msg = fmt.Sprintf("silence %s by %s: host %s metric %s from %s until %s", sl.ID, who(spec.By), sl.Host, sl.Metric,
			fromUnix(sl.Starts).UTC().Format(time.RFC3339), fromUnix(sl.Until).UTC().Format(time.RFC3339))
	}
	if sl.Comment != "" {
		msg += " (" + sl.Comment + ")"
	}
	e.repo.Journal(journalHost(c), msg)
	return sl, nil
}

// removeSilence ends an active silence early, on behalf of user by.
// Notifications it held back are sent by the next sweep.
func (e *Evaluator) removeSilence(ctx context.Context, id, by string) error {
	sl, ok := e.Silence(id)
	if !ok {
		return ErrUnknownSilence
	}
	if err := e.repo.DeleteSilenceSync(ctx, id); err != nil {
		return err
	}
	e.silMu.Lock()
	var c silence
	for i := range e.silences {
		if e.silences[i].ID == id {
			c = e.silences[i]
			e.silences = append(e.silences[:i], e.silences[i+1:]...)
			break
		}
	}
	e.silMu.Unlock()
	e.repo.Journal(journalHost(c), fmt.Sprintf("silence %s (host %s metric %s) removed by %s", id, sl.Host, sl.Metric, who(by)))
	return nil
}

// Silence returns an active or scheduled silence by id.
func (e *Evaluator) Silence(id string) (Silence, bool) {
	now := toUnix(e.now())
	e.silMu.RLock()
	defer e.silMu.RUnlock()
	for _, s := range e.silences {
		if s.ID == id && s.Until > now {
			return s.Silence, true
		}
	}
	return Silence{}, false
}

// Silences returns the active and scheduled silences, oldest first.
func (e *Evaluator) Silences() []Silence {
	now := toUnix(e.now())
	out := []Silence{}
	e.silMu.RLock()
	for _, s := range e.silences {
		if s.Until > now {
			out = append(out, s.Silence)
		}
	}
	e.silMu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out
}

// SilenceMatchesHost reports whether a silence's host glob matches host.
func SilenceMatchesHost(sl Silence, host string) bool {
	p, err := glob.Compile(sl.Host)
	return err == nil && p.Match(host)
}

// expireSilences drops silences that ended, from memory and the store.
func (e *Evaluator) expireSilences(now time.Time) {
	t := toUnix(now)
	var ended []silence
	e.silMu.Lock()
	keep := e.silences[:0]
	for _, s := range e.silences {
		if s.Until > t {
			keep = append(keep, s)
		} else {
			ended = append(ended, s)
		}
	}
	clear(e.silences[len(keep):])
	e.silences = keep
	e.silMu.Unlock()
	for _, s := range ended {
		e.repo.DeleteSilence(s.ID)
		e.repo.Journal(journalHost(s), fmt.Sprintf("silence %s (host %s metric %s) expired", s.ID, s.Host, s.Metric))
	}
}

// journalHost files a silence's journal lines under its host when the
// glob names exactly one host, daemon-wide otherwise.
func journalHost(s silence) string {
	if s.host.IsLiteral() {
		return s.Host
	}
	return ""
}

func who(user string) string {
	if user == "" {
		return "anonymous"
	}
	return user
}

func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// window is a compiled maintenance window.
type window struct {
	config.Maintenance
	sched        config.Schedule
	host, metric glob.Pattern
}

// compileWindows compiles cfg's maintenance windows (validated by config).
func compileWindows(cfg *config.Config) ([]window, error) {
	out := make([]window, 0, len(cfg.Maintenance))
	for i, m := range cfg.Maintenance {
		if m.Metric == "" {
			m.Metric = "**"
		}
		sched, err := m.Schedule()
		if err != nil {
			return nil, fmt.Errorf("maintenance.%d: %w", i, err)
		}
		h, err := glob.Compile(m.Host)
		if err != nil {
			return nil, fmt.Errorf("maintenance.%d.host: %w", i, err)
		}
		mp, err := glob.Compile(m.Metric)
		if err != nil {
			return nil, fmt.Errorf("maintenance.%d.metric: %w", i, err)
		}
		out = append(out, window{Maintenance: m, sched: sched, host: h, metric: mp})
	}
	return out, nil
}

// Window is a configured maintenance window as the API shows it: the
// entry, whether it holds now, and its current or next occurrence.
type Window struct {
	config.Maintenance
	Active    bool
	NextStart time.Time
	NextEnd   time.Time
}

// Windows returns the configured maintenance windows, in config order.
func (e *Evaluator) Windows() []Window {
	now := e.now()
	out := []Window{}
	ws := e.windows.Load()
	if ws == nil {
		return out
	}
	for _, w := range *ws {
		_, active := w.sched.Active(now)
		s, end := w.sched.Next(now)
		out = append(out, Window{Maintenance: w.Maintenance, Active: active, NextStart: s, NextEnd: end})
	}
	return out
}

func (e *Evaluator) setWindows(cfg *config.Config) error {
	ws, err := compileWindows(cfg)
	if err != nil {
		return err
	}
	e.windows.Store(&ws)
	return nil
}
