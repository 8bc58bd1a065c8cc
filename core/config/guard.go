package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Summary is what CheckTransition compares between the config in force and
// a new one: how many users, watched hosts and notification channels each
// has. The daemon records the summary of the config it applied in its
// data_dir (StateFile), so that a restart and `hbd check-config` can compare
// against it too.
type Summary struct {
	Users    int `json:"users"`
	Hosts    int `json:"watchhosts"`
	Channels int `json:"notification_channels"`
}

// StateFile is the file in data_dir that holds the Summary of the config
// the daemon last applied.
const StateFile = "config-state.json"

// Summary returns the counts CheckTransition compares.
func (c *Config) Summary() Summary {
	return Summary{Users: len(c.Users), Hosts: len(c.Watchhosts), Channels: len(c.Channels)}
}

// CheckTransition refuses a new config that would, compared with the
// summary of the config in force, switch authentication off (users → none)
// or drop every watched host or every notification channel, unless the new
// file says so explicitly: `auth: {open: true}` for open mode,
// `watchhosts: {}` and `notification_channels: {}` for none. An empty or
// truncated file is the usual cause; it must never turn a protected daemon
// into an open one. The error is an *Error naming next's file and the key.
func CheckTransition(prev Summary, next *Config) error {
	bad := func(key, format string, a ...any) error {
		return &Error{File: next.File, Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	n := next.Summary()
	switch {
	case prev.Users > 0 && n.Users == 0 && !next.Auth.Open:
		return bad("users", "the config in force has %d users and this one has none, which would turn authentication off (open mode: every endpoint without a login); if you mean it, set `auth: {open: true}`", prev.Users)
	case prev.Hosts > 0 && n.Hosts == 0 && !next.ExplicitNoHosts:
		return bad("watchhosts", "the config in force watches %d hosts and this one none (is the file cut short?); if you mean it, write `watchhosts: {}`", prev.Hosts)
	case prev.Channels > 0 && n.Channels == 0 && !next.ExplicitNoChannels:
		return bad("notification_channels", "the config in force has %d notification channels and this one none (is the file cut short?); if you mean it, write `notification_channels: {}`", prev.Channels)
	}
	return nil
}

// ReadState returns the summary recorded in dataDir by WriteState, and
// false when there is none (a new installation).
func ReadState(dataDir string) (Summary, bool, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Summary{}, false, nil
	}
	if err != nil {
		return Summary{}, false, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return Summary{}, false, fmt.Errorf("%s: %w", filepath.Join(dataDir, StateFile), err)
	}
	return s, true, nil
}

// WriteState records the summary of an applied config in dataDir
// (atomically, mode 0600).
func WriteState(dataDir string, s Summary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, StateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CheckAgainstState is CheckTransition against the summary recorded in
// next's data_dir, if any: what `hbd serve` and `hbd check-config` run.
func CheckAgainstState(next *Config) error {
	prev, ok, err := ReadState(next.DataDir)
	if err != nil {
		return &Error{File: next.File, Key: "data_dir", Msg: fmt.Sprintf("cannot read the recorded config state: %v", err)}
	}
	if !ok {
		return nil
	}
	return CheckTransition(prev, next)
}
