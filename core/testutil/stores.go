package testutil

import (
	"context"
	"os"
	"testing"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// StoreEnv selects the backend of the stores the domain packages' tests
// open through this package (Store, StorePlace, OpenStore):
// HBD_TEST_STORE=postgres runs them on a fresh PostgreSQL database each
// (`make test` runs those packages a second time so); unset or sqlite, on
// SQLite in a temporary directory. A package that may use PostgreSQL calls
// pgtest.Main from its TestMain.
const StoreEnv = "HBD_TEST_STORE"

// PostgresStores reports whether HBD_TEST_STORE selects PostgreSQL.
func PostgresStores() bool { return os.Getenv(StoreEnv) == store.DriverPostgres }

// StorePlace returns a new, empty place for a store: a temporary
// directory, or a fresh PostgreSQL database's DSN (see StoreEnv).
// Reopening the same place sees the same data, as a restart does.
func StorePlace(t testing.TB) string {
	t.Helper()
	if PostgresStores() {
		return pgtest.DSN(t)
	}
	return t.TempDir()
}

// OpenStore opens the store at a place from StorePlace.
func OpenStore(ctx context.Context, place string, opts store.Options) (*store.Store, error) {
	if PostgresStores() {
		return store.OpenPostgres(ctx, place, opts)
	}
	return store.Open(ctx, place, opts)
}
