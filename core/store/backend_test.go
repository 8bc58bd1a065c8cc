package store

import (
	"context"
	"testing"

	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backend is one of the store's two databases as the tests see it: a
// place (a directory for SQLite, a fresh database's DSN for PostgreSQL)
// and the way to open a store there. Reopening the same place sees the
// same data, as a restart does.
type backend struct {
	name  string
	place func(t testing.TB) string
	open  func(ctx context.Context, place string, opts Options) (*Store, error)
}

var (
	sqliteBackend = backend{
		name:  DriverSQLite,
		place: func(t testing.TB) string { return t.TempDir() },
		open:  Open,
	}
	postgresBackend = backend{
		name:  DriverPostgres,
		place: func(t testing.TB) string { return pgtest.DSN(t) },
		open:  OpenPostgres,
	}
	backends = []backend{sqliteBackend, postgresBackend}
)

// forBackends runs a consumer-level test once per backend, as subtests
// named sqlite and postgres.
func forBackends(t *testing.T, test func(t *testing.T, be backend)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { test(t, be) })
	}
}

// openAt opens a store at place, closed at cleanup.
func (be backend) openAt(t testing.TB, place string, history int) *Store {
	t.Helper()
	s, err := be.open(context.Background(), place, Options{SampleHistory: history})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
