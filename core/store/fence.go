package store

import "database/sql"

// Fence is what a leader-only write checks inside its own transaction:
// the lease row must still name Holder with Epoch and not have expired
// (CheckLease). The zero Fence is a single daemon without a cluster: it
// is always the leader and checks nothing.
type Fence struct {
	Holder string
	Epoch  int64
}

// Clustered reports whether the fence checks the lease.
func (f Fence) Clustered() bool { return f.Holder != "" }

// Check runs the fence in tx: nil for the zero Fence, ErrNotLeader when
// the lease moved on.
func (f Fence) Check(tx *sql.Tx) error {
	if !f.Clustered() {
		return nil
	}
	return CheckLease(tx, f.Holder, f.Epoch)
}

// FenceFunc gives the fence for a leader-only write that starts now; ok
// is false when this daemon is not the leader (the write must not
// happen). A nil FenceFunc means a single daemon: always Fence{}, true.
type FenceFunc func() (f Fence, ok bool)

// Leading calls fn, treating nil as a single daemon that always leads.
func (fn FenceFunc) Leading() (Fence, bool) {
	if fn == nil {
		return Fence{}, true
	}
	return fn()
}
