package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/pluginhost"
	"github.com/hbdmon/hbd/core/store"
)

// checkConfig validates a config file as serve would: the file itself
// (tls_cert and tls_key loaded), the transition from the config last
// applied, the wss_pem/wss_key pair, data_dir as the store opens it and
// the schema version of its database (read-only), every
// watchhosts.*.notify name against the channels of the file and those
// created through the API (in the database), and the file's channels
// against the plugins of plugins_dir when it exists.
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
	warnings := slices.Clone(cfg.Warnings)
	problems, warning := checkChannelTypes(cfg)
	if warning != "" {
		warnings = append(warnings, warning)
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: %v\n", path, p)
		}
		return 1
	}
	if cfg.OpenMode() {
		fmt.Fprintf(stdout, "%s: no users: hbd will run in OPEN MODE (every endpoint without a login)\n", path)
	}
	fmt.Fprintf(stdout, "%s: ok (%d watched hosts, %d users, %d channels)\n", path, len(cfg.Watchhosts), len(cfg.Users), len(cfg.Channels))
	return 0
}

// checkServeState is what serve refuses or reports beyond the file.
func checkServeState(cfg *config.Config) error {
	if cfg.WSSPort != 0 {
		pem, key := filepath.Join(cfg.CertPath, cfg.WSSPem), filepath.Join(cfg.CertPath, cfg.WSSKey)
		if _, err := tls.LoadX509KeyPair(pem, key); err != nil {
			return &config.Error{File: cfg.File, Key: "wss_pem", Msg: fmt.Sprintf("cannot load the certificate and key (%s, %s): %v", pem, key, err)}
		}
	}
	if err := store.CheckDataDir(cfg.DataDir); err != nil {
		return &config.Error{File: cfg.File, Key: "data_dir", Msg: strings.TrimPrefix(err.Error(), "data_dir ")}
	}
	if !cfg.Store.Postgres() {
		if err := store.CheckSchema(context.Background(), cfg.DataDir); err != nil {
			return &config.Error{File: cfg.File, Key: "data_dir", Msg: err.Error()}
		}
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

// checkChannelTypes starts the plugins of plugins_dir as serve does
// (checksum pins included) and checks the file's channels with them. When
// there are channels but no plugins_dir to check them against, warning
// says so.
func checkChannelTypes(cfg *config.Config) (problems []error, warning string) {
	if len(cfg.Channels) == 0 {
		return nil, ""
	}
	if cfg.PluginsDir == "" {
		return nil, "plugins_dir is not set: no channel of notification_channels can deliver"
	}
	if _, err := os.Stat(cfg.PluginsDir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Sprintf("plugins_dir %s does not exist: the types of notification_channels are not checked", cfg.PluginsDir)
	}
	plugins := pluginhost.New(pluginhost.Options{Dir: cfg.PluginsDir, Checksums: cfg.PluginChecksums})
	defer plugins.Close()
	plugins.Rescan()
	return channels.CheckFileChannels(context.Background(), cfg, plugins), ""
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
