package auth_test

import (
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/store"
)

// The SQLite store is the Service's repository (checked here, not in
// package store, so the store imports no consumer).
var _ auth.Repository = (*store.Store)(nil)
