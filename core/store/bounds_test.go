package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// A host inventing plugin names cannot grow the store without end
// (issue 10): past MaxPluginsPerHost a new plugin is refused, known ones
// and other hosts still store.
func TestPluginsPerHostAreBounded(t *testing.T) { eachStore(t, testPluginsPerHostAreBounded) }

func testPluginsPerHostAreBounded(t *testing.T, st *store.Store) {
	ctx := context.Background()
	put := func(host, plugin string, ts float64) error {
		return st.AppendSamples(ctx, host, []store.PluginSample{{Plugin: plugin,
			Sample: store.Sample{Timestamp: ts, Paths: []string{"v"}, Values: []float64{1}}}})
	}
	for i := 0; i < store.MaxPluginsPerHost; i++ {
		if err := put("web01", fmt.Sprintf("p%d", i), 1); err != nil {
			t.Fatalf("plugin %d: %v", i, err)
		}
	}
	if err := put("web01", "one_too_many", 1); !errors.Is(err, store.ErrTooManyPlugins) {
		t.Fatalf("plugin %d: err = %v, want ErrTooManyPlugins", store.MaxPluginsPerHost+1, err)
	}
	if err := put("web01", "p0", 2); err != nil {
		t.Fatalf("a known plugin: %v", err)
	}
	if err := put("web02", "one_too_many", 1); err != nil {
		t.Fatalf("another host: %v", err)
	}
}

// eachStore runs a test of this external package on a fresh store of
// each backend (the internal tests use forBackends).
func eachStore(t *testing.T, test func(t *testing.T, st *store.Store)) {
	for _, be := range []string{store.DriverSQLite, store.DriverPostgres} {
		t.Run(be, func(t *testing.T) {
			var st *store.Store
			var err error
			if be == store.DriverPostgres {
				st, err = store.OpenPostgres(context.Background(), pgtest.DSN(t), store.Options{})
			} else {
				st, err = store.Open(context.Background(), t.TempDir(), store.Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			test(t, st)
		})
	}
}
