package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// checkConfig validates a config file as serve would: the file itself,
// the transition from the config last applied, data_dir as the store
// opens it, and every watchhosts.*.notify name against the channels of
// the file and those created through the API (in the database).
func checkConfig(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("check-config", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path, nil)
	if err == nil {
		err = config.CheckAgainstState(cfg)
	}
	if err == nil && cfg.Store.Postgres() {
		err = checkStoreDSN(path, cfg)
	}
	if err == nil {
		err = checkServeState(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w)
	}
	if cfg.OpenMode() {
		fmt.Fprintf(stdout, "%s: no users: hbd will run in OPEN MODE (every endpoint without a login)\n", path)
	}
	fmt.Fprintf(stdout, "%s: ok (%d watched hosts, %d users, %d channels)\n", path, len(cfg.Watchhosts), len(cfg.Users), len(cfg.Channels))
	return 0
}

// checkServeState is what serve refuses or reports beyond the file.
func checkServeState(cfg *config.Config) error {
	if err := store.CheckDataDir(cfg.DataDir); err != nil {
		return &config.Error{File: cfg.File, Key: "data_dir", Msg: strings.TrimPrefix(err.Error(), "data_dir ")}
	}
	stored, err := store.StoredChannelNames(context.Background(), cfg.DataDir)
	if err != nil {
		return &config.Error{File: cfg.File, Key: "data_dir", Msg: err.Error()}
	}
	hosts := make([]string, 0, len(cfg.Watchhosts))
	for h := range cfg.Watchhosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		for _, n := range cfg.Watchhosts[h].Notify {
			if _, ok := cfg.Channels[n]; ok || slices.Contains(stored, n) {
				continue
			}
			known := make([]string, 0, len(cfg.Channels)+len(stored))
			for c := range cfg.Channels {
				known = append(known, c)
			}
			known = append(known, stored...)
			sort.Strings(known)
			return &config.Error{File: cfg.File, Key: "watchhosts." + h + ".notify", Msg: fmt.Sprintf("no channel named %q (channels: %v)", n, known)}
		}
	}
	return nil
}

// checkStoreDSN parses the PostgreSQL connection string without
// connecting; the message names the key, never the value.
func checkStoreDSN(path string, cfg *config.Config) error {
	dsn, _, err := cfg.Store.Connection()
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = path
		}
		return err
	}
	if err := store.CheckDSN(dsn.Reveal()); err != nil {
		key := "store.dsn"
		if cfg.Store.DSNFile != "" {
			key = "store.dsn_file"
		}
		return &config.Error{File: path, Key: key, Msg: strings.TrimPrefix(err.Error(), "store.dsn: ")}
	}
	return nil
}
