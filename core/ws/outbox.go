package ws

import "sync"

// outbox is one client's send queue: encoded frames in publishing order,
// at most max of them. A frame with a key (a host's state, a host and
// plugin's latest sample) replaces the queued frame with the same key in
// its place, so a client that falls behind gets the latest state of each
// host in fewer frames, and never an older frame after a newer one: a
// frame is either still queued (and replaced) or already taken by the
// writer (and the newer one queues behind it).
//
// Publishers push under the hub's read lock; the client's writer takes.
// mu is the innermost lock.
type outbox struct {
	mu   sync.Mutex
	ring []queued // circular; len(ring) is the capacity, grown up to max
	head int      // index in ring of the oldest frame
	n    int      // frames queued
	seq0 uint64   // sequence number of ring[head]
	// keys maps the key of each queued keyed frame to its sequence number.
	keys map[string]uint64
	max  int

	// wake has a token while frames are queued.
	wake chan struct{}
}

type queued struct {
	key string
	msg []byte
}

// minRing is the ring's initial capacity; it grows by doubling to max and
// is released when the client catches up.
const minRing = 16

func newOutbox(max int) *outbox {
	return &outbox{max: max, wake: make(chan struct{}, 1)}
}

// What push did with a frame.
const (
	pushQueued   = iota // queued at the end
	pushReplaced        // replaced the queued frame with the same key
	pushFull            // refused: the queue is full
)

// push queues msg. A non-empty key replaces the queued frame with that
// key, in its place.
func (o *outbox) push(key string, msg []byte) int {
	o.mu.Lock()
	if key != "" {
		if seq, ok := o.keys[key]; ok {
			o.ring[o.index(seq)].msg = msg
			o.mu.Unlock()
			return pushReplaced
		}
	}
	if o.n == o.max {
		o.mu.Unlock()
		return pushFull
	}
	if o.n == len(o.ring) {
		o.grow()
	}
	seq := o.seq0 + uint64(o.n)
	o.ring[o.index(seq)] = queued{key: key, msg: msg}
	o.n++
	if key != "" {
		if o.keys == nil {
			o.keys = map[string]uint64{}
		}
		o.keys[key] = seq
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return pushQueued
}

// pop takes the oldest frame; more reports whether others remain (the
// wake token is renewed for them).
func (o *outbox) pop() (msg []byte, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 {
		return nil, false
	}
	q := o.ring[o.head]
	o.ring[o.head] = queued{}
	if q.key != "" && o.keys[q.key] == o.seq0 {
		delete(o.keys, q.key)
	}
	o.head = (o.head + 1) % len(o.ring)
	o.seq0++
	o.n--
	if o.n > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	} else if len(o.ring) > minRing {
		// Caught up after a burst: give the memory back.
		o.ring, o.keys, o.head = nil, nil, 0
	}
	return q.msg, true
}

// index is the ring position of the frame numbered seq (queued).
func (o *outbox) index(seq uint64) int {
	return (o.head + int(seq-o.seq0)) % len(o.ring)
}

// grow doubles the ring (up to max), keeping the frames in order.
func (o *outbox) grow() {
	size := max(minRing, 2*len(o.ring))
	size = min(size, o.max)
	ring := make([]queued, size)
	for i := 0; i < o.n; i++ {
		ring[i] = o.ring[(o.head+i)%len(o.ring)]
	}
	o.ring, o.head = ring, 0
}
