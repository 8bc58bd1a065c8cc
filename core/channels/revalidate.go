package channels

// Re-validation of stored channels: a channel was checked by its type's
// plugin when it was saved, but a plugin upgrade may make the checks
// stricter. The registry checks every channel of a type again when the
// type gets a new provider (the daemon wires pluginhost's OnTypeChange to
// Revalidate) and the user channels at start; a channel that fails is
// flagged (View.Problem, "problem" in the API and the channels page) and
// journaled once, and unflagged (and journaled) when it passes again.
// Deliveries through a flagged channel are still attempted.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// revalidateBudget bounds one re-validation pass.
const revalidateBudget = 2 * time.Minute

// Revalidate checks every channel of type typ (config and user channels)
// with the type's plugin again and flags those that fail. A check the
// plugin could not make (it was unavailable) leaves the channel as it was.
func (r *Registry) Revalidate(ctx context.Context, typ string) {
	ctx, cancel := context.WithTimeout(ctx, revalidateBudget)
	defer cancel()
	schema, ok := r.opts.Plugins.Types()[typ]
	if !ok {
		return
	}
	n, bad := 0, 0
	for _, ch := range r.Channels() {
		if ch.Type != typ || ctx.Err() != nil {
			continue
		}
		err := r.validate(ctx, schema, ch.Fields)
		if errors.Is(err, ErrUnavailable) {
			continue
		}
		n++
		if err != nil {
			bad++
		}
		r.note(ch.Name, err, true)
	}
	r.log.Info("channels re-validated after a plugin change", "type", typ, "checked", n, "failing", bad)
}

// revalidateUsers checks the user channels names (at start: all of
// them; after a Sync: those created or changed by another daemon). With
// journal, a change of verdict is journaled (see note).
func (r *Registry) revalidateUsers(ctx context.Context, names []string, journal bool) {
	ctx, cancel := context.WithTimeout(ctx, revalidateBudget)
	defer cancel()
	types := r.opts.Plugins.Types()
	r.mu.RLock()
	users := maps.Clone(r.user)
	r.mu.RUnlock()
	cfg := r.opts.Config()
	for _, name := range names {
		ch, ok := users[name]
		if !ok {
			continue
		}
		schema, ok := types[ch.Type]
		if _, shadowed := cfg.Channels[name]; !ok || shadowed || ctx.Err() != nil {
			continue
		}
		if err := r.validate(ctx, schema, ch.Fields); !errors.Is(err, ErrUnavailable) {
			r.note(name, err, journal)
		}
	}
}

// note records the outcome of a check of channel name: err nil clears its
// problem, an ErrInvalid error sets it. With journal, a change is
// journaled (daemon-wide, which only admins read) and logged.
func (r *Registry) note(name string, err error, journal bool) {
	var ce *Error
	if err != nil && (!errors.As(err, &ce) || !errors.Is(err, ErrInvalid)) {
		return // not a verdict on the settings
	}
	r.mu.Lock()
	old, had := r.problems[name]
	var msg string
	switch {
	case err == nil && !had:
		r.mu.Unlock()
		return
	case err == nil:
		delete(r.problems, name)
		msg = fmt.Sprintf("notification channel %s passes its checks again", name)
	case had && old.Field == ce.Field && old.Message == ce.Msg:
		r.mu.Unlock()
		return
	default:
		r.problems[name] = Problem{Field: ce.Field, Message: ce.Msg, Since: r.opts.Now()}
		msg = fmt.Sprintf("notification channel %s no longer passes the checks of its type: %s", name, ce.Msg)
	}
	r.mu.Unlock()
	if journal {
		r.opts.Journal.Journal("", msg)
		r.log.Warn(msg)
	}
}

// problem returns the problem flagged on channel name.
func (r *Registry) problem(name string) (Problem, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.problems[name]
	return p, ok
}

// untouchedProblem reports whether an update may be saved although its
// settings fail the checks: the failure is one the update did not cause,
// because it changes no type field at all (only hosts, min_level or
// private), or the failing field keeps its stored value. The channel
// stays flagged; its owner can fix the field in a later update.
func untouchedProblem(err error, old, now map[string]string) bool {
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
		return false
	}
	if maps.Equal(old, now) {
		return true
	}
	return ce.Field != "" && old[ce.Field] == now[ce.Field]
}
