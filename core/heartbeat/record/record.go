// Package record holds the stored form of what the heartbeat side
// remembers across restarts. It is a leaf package so that storage backends
// can implement heartbeat.RecordStore without importing the heartbeat
// package (whose tests use the store).
package record

// Heartbeats is what the daemon remembers of a host's heartbeats across
// restarts: which address families it used and when it was last heard
// from over each, so that a restarted daemon waits for every one of them.
type Heartbeats struct {
	// Host is the host name.
	Host string
	// Families maps each address family the host used ("ipv4", "ipv6") to
	// when its last heartbeat over it was accepted, unix seconds; 0 when
	// not known.
	Families map[string]float64
}

// LastSeen returns the newest of the families' times; 0 when none is known.
func (r Heartbeats) LastSeen() float64 {
	var last float64
	for _, ts := range r.Families {
		last = max(last, ts)
	}
	return last
}
