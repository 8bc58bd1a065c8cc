package store

import (
	"context"
	"database/sql"
	"sync"
)

// Batch gathers writes that must commit together, in one transaction
// behind one fence (issue 15, item 4: an alert change and the outbox
// rows of its notifications). The writes are added in order and run in
// that order; Commit queues them with the writer as one write, which
// first checks the fence: when the lease moved on, none of them is
// written and each one's done gets ErrNotLeader. A Batch is used by one
// goroutine at a time; writes added after Commit are run on their own,
// fenced the same way.
type Batch struct {
	s     *Store
	fence Fence

	mu     sync.Mutex
	ops    []writeOp
	queued bool
}

// NewBatch starts a batch of writes fenced by f.
func (s *Store) NewBatch(f Fence) *Batch { return &Batch{s: s, fence: f} }

// Fence is the fence the batch commits behind.
func (b *Batch) Fence() Fence { return b.fence }

// add appends op to the batch, or queues it alone, fenced, when the batch
// was already committed.
func (b *Batch) add(op writeOp) {
	b.mu.Lock()
	if !b.queued {
		b.ops = append(b.ops, op)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.s.enqueueFenced(b.fence, []writeOp{op})
}

// Commit queues the batch's writes as one transaction, without waiting.
// Each write's done gets the transaction's outcome on the writer's
// goroutine.
func (b *Batch) Commit() {
	b.mu.Lock()
	ops := b.ops
	b.ops, b.queued = nil, true
	b.mu.Unlock()
	if len(ops) > 0 {
		b.s.enqueueFenced(b.fence, ops)
	}
}

// enqueueFenced queues ops as one write that checks f first.
func (s *Store) enqueueFenced(f Fence, ops []writeOp) {
	op := writeOp{
		fn: func(tx *sql.Tx) error {
			if err := f.Check(tx); err != nil {
				return err
			}
			for _, op := range ops {
				if err := op.fn(tx); err != nil {
					return err
				}
			}
			return nil
		},
		after: func(err error) {
			for _, op := range ops {
				if op.after != nil {
					op.after(err)
				}
			}
		},
	}
	if err := s.enqueue(context.Background(), op); err != nil {
		s.log.Warn("queued write dropped", "error", err)
		op.after(err)
	}
}
