package daemon

import (
	"context"
	"errors"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// openStore opens the database the config's store key selects: SQLite in
// data_dir, or PostgreSQL. The DSN is read (dsn_file, password_file) at
// start and never logged; store.driver and its keys take effect at the
// next start, not on SIGHUP.
func openStore(ctx context.Context, cfg *config.Config, log hclog.Logger) (*store.Store, error) {
	opts := store.Options{
		SampleHistory: cfg.SampleHistory,
		Retention:     cfg.Retention,
		Logger:        log,
	}
	if !cfg.Store.Postgres() {
		return store.Open(ctx, cfg.DataDir, opts)
	}
	dsn, password, err := cfg.Store.Connection()
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = cfg.File
		}
		return nil, err
	}
	opts.Password = password.Reveal()
	st, err := store.OpenPostgres(ctx, dsn.Reveal(), opts)
	if err != nil {
		return nil, err
	}
	log.Info("store: PostgreSQL", "database", st.Path())
	return st, nil
}
