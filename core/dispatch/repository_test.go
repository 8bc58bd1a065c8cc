package dispatch_test

import (
	"github.com/hbdmon/hbd/core/dispatch"
	"github.com/hbdmon/hbd/core/store"
)

// The SQLite store is the Dispatcher's repository (checked here, not in
// package store, so the store imports no consumer).
var _ dispatch.Repository = (*store.Store)(nil)
