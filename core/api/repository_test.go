package api_test

import (
	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/store"
)

// The SQLite store is the API's storage (checked here, not in package
// store, so the store imports no consumer).
var _ api.Store = (*store.Store)(nil)
