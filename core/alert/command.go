package alert

// Acknowledgements and silences asked of a follower (issue 15,
// docs/HA.md): the follower hands them to the leader through the
// database (ClusterStore.RunAlertCommand) and answers with the leader's
// result; the leader's daemon applies them with ApplyCommand, through the
// same code as its own requests (journal lines, acknowledgement
// notifications and fenced writes alike).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/store"
)

// CommandWait is how long a follower waits for the leader to apply an
// acknowledgement or silence before it answers ErrNoLeader.
const CommandWait = 10 * time.Second

// ErrNoLeader: a follower's acknowledgement or silence was not applied
// because no leader answered within CommandWait (the API answers 503).
var ErrNoLeader = errors.New("no leader answered: the acknowledgement or silence was not applied; try again")

// Command kinds in alert_commands.
const (
	cmdAck           = "ack"
	cmdAddSilence    = "silence.add"
	cmdRemoveSilence = "silence.remove"
)

// commandArgs are a command's arguments.
type commandArgs struct {
	Host    string       `json:"host,omitempty"`
	Metric  string       `json:"metric,omitempty"`
	By      string       `json:"by,omitempty"`
	ID      string       `json:"id,omitempty"` // the silence to remove, or the new silence's id (chosen by the follower)
	Silence *SilenceSpec `json:"silence,omitempty"`
}

// commandResult is what the leader answers.
type commandResult struct {
	// Error names the sentinel the leader's evaluator returned ("" for
	// success); Message is its text.
	Error   string   `json:"error,omitempty"`
	Message string   `json:"message,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Silence *Silence `json:"silence,omitempty"`
}

// commandErrors maps result error names to the sentinels callers branch on.
var commandErrors = map[string]error{
	"unknown_metric":  ErrUnknownMetric,
	"not_alerting":    ErrNotAlerting,
	"unknown_silence": ErrUnknownSilence,
	"invalid":         ErrInvalid,
	"no_leader":       ErrNoLeader,
	"storage":         store.ErrStorage,
}

// remoteError is an error the leader returned, with its text and the
// sentinel it wraps.
type remoteError struct {
	kind error
	msg  string
}

func (r remoteError) Error() string { return r.msg }
func (r remoteError) Unwrap() error { return r.kind }

// forwarding reports whether requests must go to the leader: a clustered
// follower with a ClusterStore.
func (e *Evaluator) forwarding() bool {
	return e.leader != nil && e.mirror.src != nil && e.follower.Load()
}

// forward hands a command to the leader and decodes its result.
func (e *Evaluator) forward(ctx context.Context, kind string, args commandArgs) (commandResult, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return commandResult{}, err
	}
	raw, err := e.mirror.src.RunAlertCommand(ctx, kind, b, args.By, e.mirror.wait)
	if errors.Is(err, store.ErrNoAnswer) {
		return commandResult{}, ErrNoLeader
	}
	if err != nil {
		return commandResult{}, fmt.Errorf("hand %s to the leader: %w", kind, err)
	}
	var res commandResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return commandResult{}, fmt.Errorf("the leader's answer to %s: %w", kind, err)
	}
	if res.Error != "" {
		if s, ok := commandErrors[res.Error]; ok {
			return res, remoteError{kind: s, msg: res.Message}
		}
		return res, errors.New(res.Message)
	}
	return res, nil
}

// ApplyCommand applies one command a follower handed over (the leader's
// daemon calls it for each row of store.ApplyAlertCommands) and returns
// the result for the follower. A daemon that does not lead answers
// "no leader".
func (e *Evaluator) ApplyCommand(ctx context.Context, c store.AlertCommand) []byte {
	var res commandResult
	var args commandArgs
	var err error
	switch {
	case !e.Leading():
		err = ErrNoLeader
	case json.Unmarshal(c.Args, &args) != nil:
		err = fmt.Errorf("alert command %d: malformed arguments", c.ID)
	default:
		switch c.Kind {
		case cmdAck:
			var st Status
			st, err = e.ack(ctx, args.Host, args.Metric, args.By)
			if err == nil {
				res.Status = &st
			}
		case cmdAddSilence:
			if args.Silence == nil {
				err = fmt.Errorf("%w: no silence", ErrInvalid)
				break
			}
			var sl Silence
			sl, err = e.addSilenceID(ctx, *args.Silence, args.ID)
			if err == nil {
				res.Silence = &sl
			}
		case cmdRemoveSilence:
			err = e.removeSilence(ctx, args.ID, args.By)
		default:
			err = fmt.Errorf("alert command %d: unknown kind %q", c.ID, c.Kind)
		}
	}
	if err != nil {
		res.Error, res.Message = "failed", err.Error()
		for name, s := range commandErrors {
			if errors.Is(err, s) {
				res.Error = name
				break
			}
		}
		e.log.Debug("alert command refused", "id", c.ID, "kind", c.Kind, "error", err)
	}
	b, _ := json.Marshal(res) // plain values: cannot fail
	return b
}

// Ack acknowledges a host's non-OK metric on behalf of user by (see
// ack); a clustered follower has the leader do it.
func (e *Evaluator) Ack(ctx context.Context, host, metric, by string) (Status, error) {
	if !e.forwarding() {
		return e.ack(ctx, host, metric, by)
	}
	res, err := e.forward(ctx, cmdAck, commandArgs{Host: host, Metric: metric, By: by})
	if err != nil {
		return Status{}, err
	}
	if res.Status == nil {
		return Status{}, errors.New("the leader's acknowledgement came without a state")
	}
	return *res.Status, nil
}

// AddSilence creates a silence (see addSilence); a clustered follower
// has the leader do it. A request failing Validate is ErrInvalid.
func (e *Evaluator) AddSilence(ctx context.Context, spec SilenceSpec) (Silence, error) {
	if !e.forwarding() {
		return e.addSilence(ctx, spec)
	}
	if err := spec.Validate(); err != nil {
		return Silence{}, err
	}
	// The id is chosen here, so the leader applying this again (it died
	// before recording its result) finds the silence instead of adding
	// a second one.
	res, err := e.forward(ctx, cmdAddSilence, commandArgs{By: spec.By, Silence: &spec, ID: newID()})
	if err != nil {
		return Silence{}, err
	}
	if res.Silence == nil {
		return Silence{}, errors.New("the leader's silence came without one")
	}
	return *res.Silence, nil
}

// RemoveSilence ends an active silence early, on behalf of user by (see
// removeSilence); a clustered follower has the leader do it.
func (e *Evaluator) RemoveSilence(ctx context.Context, id, by string) error {
	if !e.forwarding() {
		return e.removeSilence(ctx, id, by)
	}
	_, err := e.forward(ctx, cmdRemoveSilence, commandArgs{ID: id, By: by})
	return err
}
