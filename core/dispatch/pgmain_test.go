package dispatch_test

import (
	"testing"

	"github.com/hbdmon/hbd/core/testutil/pgtest"
)

// TestMain stops the PostgreSQL test server, if HBD_TEST_STORE=postgres
// started one (see testutil.StoreEnv).
func TestMain(m *testing.M) { pgtest.Main(m) }
