package ws

import (
	"sync"
	"time"
)

// DefaultSnapshotMaxAge is how long a taken host snapshot is given to
// clients that connect later (Options.SnapshotMaxAge).
const DefaultSnapshotMaxAge = time.Second

// snapshot is the state of every host when a client connected, taken once
// (Options.Snapshot) and shared by the clients that connect while no host
// state was published since and it is younger than SnapshotMaxAge. Its
// messages are encoded once, by the first writer that needs them; every
// client still filters them by its own access when it writes them.
//
// Why sharing is exact: a client registers (under the hub's write lock)
// at host version v, the number of host states published so far. Every
// host state published later reaches its queue; every one published
// before is in any snapshot whose taking began at version >= v, because a
// state is read before its publication is counted (PublishHost). So a
// client may be given any snapshot with ver >= v, and none other.
type snapshot struct {
	ver   uint64    // the hub's host version when taking it began
	taken time.Time // when taking it began
	hosts []Host

	msgsOnce sync.Once
	msgs     [][]byte // the "host" message of each host, in order

	framesOnce sync.Once
	frames     [][]byte // every host in arrays of snapshotBatch, for batched administrators
}

// messages returns the encoded "host" message of each host, encoding them
// on the first call.
func (s *snapshot) messages() [][]byte {
	s.msgsOnce.Do(func() {
		s.msgs = make([][]byte, len(s.hosts))
		for i, hs := range s.hosts {
			s.msgs[i] = encode(TypeHost, hs)
		}
	})
	return s.msgs
}

// allFrames returns the snapshot as batched frames of every host (arrays
// of at most snapshotBatch messages), for clients that may see all hosts.
func (s *snapshot) allFrames() [][]byte {
	s.framesOnce.Do(func() {
		msgs := s.messages()
		for len(msgs) > 0 {
			n := min(len(msgs), snapshotBatch)
			s.frames = append(s.frames, joinFrame(msgs[:n]))
			msgs = msgs[n:]
		}
	})
	return s.frames
}

// joinFrame is the JSON array of msgs, a batched frame.
func joinFrame(msgs [][]byte) []byte {
	n := 1 + len(msgs)
	for _, m := range msgs {
		n += len(m)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	return append(b, ']')
}

// snapshotFor returns a snapshot for a client registered at host version
// ver: the last one taken, when it began at ver or later and is younger
// than SnapshotMaxAge, or a new one. It is called by the clients' writers,
// outside the hub's lock, so publishing and other upgrades go on while a
// snapshot is taken; clients connecting meanwhile wait for it and share it.
func (h *Hub) snapshotFor(ver uint64) *snapshot {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	if s := h.snap; s != nil && s.ver >= ver && time.Since(s.taken) < h.opts.SnapshotMaxAge {
		h.snapShared.Add(1)
		return s
	}
	s := &snapshot{ver: h.hostVer.Load(), taken: time.Now()}
	s.hosts = h.opts.Snapshot()
	h.snap = s
	h.snapTaken.Add(1)
	return s
}

// writeSnapshot writes the host states c may see, before anything queued:
// one frame per host, or arrays of at most snapshotBatch hosts for a
// batched client. It returns false when the client must go.
func (c *client) writeSnapshot(h *Hub) bool {
	s := h.snapshotFor(c.snapVer)
	msgs := s.messages()
	timeout := h.opts.WriteTimeout
	// Only this goroutine changes c.principal (reauthenticate), so it
	// reads it without the hub's lock.
	if h.opts.Policy.IsAdmin(c.principal) {
		if c.batched {
			for _, f := range s.allFrames() {
				if !c.write(f, timeout) {
					return false
				}
			}
			return true
		}
		for _, m := range msgs {
			if !c.write(m, timeout) {
				return false
			}
		}
		return true
	}
	// One frame at a time: the client holds one array, not all of them.
	var picked [][]byte
	for i, hs := range s.hosts {
		if !h.opts.Policy.CanSee(c.principal, hs.Name) {
			continue
		}
		if !c.batched {
			if !c.write(msgs[i], timeout) {
				return false
			}
			continue
		}
		if picked = append(picked, msgs[i]); len(picked) == snapshotBatch {
			if !c.write(joinFrame(picked), timeout) {
				return false
			}
			picked = picked[:0]
		}
	}
	return len(picked) == 0 || c.write(joinFrame(picked), timeout)
}
