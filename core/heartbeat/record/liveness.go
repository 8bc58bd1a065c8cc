package record

// Liveness is one host family's newest accepted heartbeat as one daemon of
// a cluster saw it: the row it shares with the other daemons (PostgreSQL
// only), written in coalesced batches. The newest LastSeen per host and
// family wins, wherever it was seen.
type Liveness struct {
	// Host and Family ("ipv4", "ipv6") name the connection.
	Host, Family string
	// Node is the daemon that accepted the heartbeat.
	Node string
	// Dynamic is true for hosts registered with an enroll-derived key.
	Dynamic bool
	// LastSeen is when the heartbeat was accepted, unix nanoseconds on
	// Node's clock.
	LastSeen int64
	// IntervalMS is the agent's announced sending interval.
	IntervalMS int64
	// RTTMicros and RTTAvgMicros are the last and the smoothed round-trip
	// times the agent reported to Node; LossPercent is the loss Node saw.
	RTTMicros, RTTAvgMicros int64
	LossPercent             float64
	// Addr is the heartbeat's source address.
	Addr string
	// Session, Seq and Sent identify the accepted heartbeat in its agent
	// session: the flush advances the shared counter of a session Node
	// holds the claim of to Seq (and Sent, the agent's send time, unix
	// nanoseconds). Seq 0: the row does not advance the counter.
	Session uint64
	Seq     uint64
	Sent    int64
	// Down is set on a row the leader writes when it declared the
	// connection DOWN: the other daemons follow it unless they heard the
	// host since LastSeen.
	Down bool
}

// SessionClaim asks for the right to accept an agent session's sequence
// numbers over a family (Seq is the first one the daemon wants to accept,
// Sent its send time).
type SessionClaim struct {
	Host, Family string
	Session      uint64
	Seq          uint64
	Sent         int64
}

// SessionGrant is a granted claim: the daemon may accept the session's
// sequence numbers above Floor (the shared counter when it was claimed).
type SessionGrant struct {
	Host, Family string
	Session      uint64
	Floor        uint64
}
