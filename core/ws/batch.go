package ws

import (
	"encoding/binary"
	"sync"
	"time"
)

// batcher holds the messages published for batched clients (?batch=1)
// since the last flush. A message with a key (a host's state, a host and
// plugin's sample) replaces the held message with the same key in its
// place, as in a client's outbox, so a frame never carries an older state
// after a newer one.
//
// Publishers add under the hub's read lock; flush swaps the held messages
// out and hands one frame to each batched client.
type batcher struct {
	mu      sync.Mutex
	pending []pending
	keys    map[string]int // key -> index in pending
	seq     uint64         // sequence number of the last message added

	// flushMu serialises flushes, so frames leave in the order their
	// messages were taken; last is when the last flush began.
	flushMu sync.Mutex
	last    time.Time

	kick  chan struct{} // a token when messages wait and the flusher may sleep
	start sync.Once     // starts the flusher with the first batched client
}

type pending struct {
	typ, host, key string
	msg            []byte
	seq            uint64 // when it was published; a replacement renews it
}

// add holds one message. merged reports that it replaced a held one; full
// that maxBatch messages are held, so the caller should flush now.
func (b *batcher) add(typ, host, key string, msg []byte, maxBatch int) (merged, full bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	if key != "" {
		if i, ok := b.keys[key]; ok {
			b.pending[i].msg = msg
			b.pending[i].seq = b.seq
			return true, false
		}
	}
	b.pending = append(b.pending, pending{typ: typ, host: host, key: key, msg: msg, seq: b.seq})
	if key != "" {
		if b.keys == nil {
			b.keys = map[string]int{}
		}
		b.keys[key] = len(b.pending) - 1
	}
	if len(b.pending) == 1 {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return false, len(b.pending) >= maxBatch
}

// next is the sequence number the next message will get: a client
// registered now gets the messages numbered from it on. The caller holds
// the hub's write lock, so no message is being added.
func (b *batcher) next() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq + 1
}

// take returns the held messages and starts a new batch.
func (b *batcher) take() []pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending
	b.pending = make([]pending, 0, cap(p))
	clear(b.keys)
	return p
}

// flusher flushes the held messages when some are waiting, at most once
// per FlushInterval: the first message after a quiet spell leaves at once,
// a busy feed leaves in one frame per interval.
func (h *Hub) flusher() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.batch.kick:
		}
		h.batch.flushMu.Lock()
		next := h.batch.last.Add(h.opts.FlushInterval)
		h.batch.flushMu.Unlock()
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-h.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		h.flush()
	}
}

// groupKey identifies the batched clients that get the same messages of a
// flush: administrators see every host, other users what their name
// allows; cut is set only for clients that registered during the batch.
type groupKey struct {
	all   bool
	user  string
	types typeSet
	cut   uint64
}

// flush sends the held messages to every batched client, one frame each:
// the JSON array of the messages the client wants and may see. Clients
// with the same messages share one encoding. A client whose queue is full
// is dropped.
func (h *Hub) flush() {
	h.batch.flushMu.Lock()
	defer h.batch.flushMu.Unlock()
	h.batch.last = time.Now()
	batch := h.batch.take()
	if len(batch) == 0 {
		return
	}
	oldest := batch[0].seq
	for _, p := range batch {
		oldest = min(oldest, p.seq)
	}

	var slow []*client
	groups := map[groupKey][]byte{}
	frames := map[string][]byte{} // by the indices of the messages
	var picked []int
	var idx []byte
	h.mu.RLock()
	for c := range h.batched {
		k := groupKey{all: h.opts.Policy.IsAdmin(c.principal), types: c.types}
		if !k.all {
			k.user = c.principal.User
		}
		if c.cut > oldest {
			k.cut = c.cut
		}
		frame, ok := groups[k]
		if !ok {
			picked, idx = picked[:0], idx[:0]
			for i, p := range batch {
				if p.seq < c.cut || !c.wants(p.typ) {
					continue
				}
				if !k.all && !h.mayReceive(c.principal, p.host) {
					continue
				}
				picked = append(picked, i)
				idx = binary.AppendUvarint(idx, uint64(i))
			}
			if len(picked) > 0 {
				if frame, ok = frames[string(idx)]; !ok {
					frame = encodeBatch(batch, picked)
					frames[string(idx)] = frame
				}
			}
			groups[k] = frame
		}
		if frame != nil && c.out.push("", frame) == pushFull {
			slow = append(slow, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range slow {
		h.remove(c, ErrSlowClient)
	}
}

// encodeBatch is the JSON array of the picked messages, in order.
func encodeBatch(batch []pending, picked []int) []byte {
	n := 1 + len(picked)
	for _, i := range picked {
		n += len(batch[i].msg)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for j, i := range picked {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, batch[i].msg...)
	}
	return append(b, ']')
}

// snapshotBatch is the number of host states per frame of a batched
// client's snapshot.
const snapshotBatch = 500
