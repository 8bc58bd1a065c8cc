package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"time"
)

// Wire format constants of protocol version 1. docs/PROTOCOL.md is the
// byte-by-byte reference; the offsets below must agree with it.
const (
	// Version is the protocol version this package speaks.
	Version = 1
	// MaxPacketSize bounds every datagram; larger ones are dropped as
	// oversized without being parsed.
	MaxPacketSize = 256
	// MaxHostLen is the longest host name a heartbeat may carry.
	MaxHostLen = 64
	// TagSize is the length of the truncated HMAC-SHA256 tag that ends every
	// packet.
	TagSize = 16
	// HeartbeatMinSize and HeartbeatMaxSize bound a heartbeat: a one-byte
	// and a MaxHostLen-byte host name.
	HeartbeatMinSize = hbHostOff + 1 + TagSize
	HeartbeatMaxSize = hbHostOff + MaxHostLen + TagSize
	// AckSize is the exact size of an ack. It is smaller than
	// HeartbeatMinSize, so the server never answers with more bytes than it
	// received.
	AckSize = ackServerOff + 8 + TagSize
	// MinInterval and MaxInterval bound the sending interval an agent may
	// announce.
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
)

const (
	magic0, magic1 = 'h', 'b'
	headerSize     = 5 // magic(2) version(1) type(1) flags(1)

	offSession = 5
	offSeq     = 13
	offSent    = 21

	hbIntervalOff = 29
	hbRTTOff      = 33
	hbHostLenOff  = 37
	hbHostOff     = 38

	ackServerOff = 29
)

// Type is the kind of a packet (byte 3).
type Type uint8

// Packet types.
const (
	TypeHeartbeat Type = 1
	TypeAck       Type = 2
)

// Flags are the option bits of a packet (byte 4).
type Flags uint8

// FlagEnrolled marks a heartbeat signed with a key derived from the enroll
// key (DeriveHostKey) rather than a configured host key. It is covered by the
// MAC and informational: the server chooses the key by host name alone.
const FlagEnrolled Flags = 1 << 0

// Sentinel errors of Decode and of the encoders. Each maps onto a drop reason
// of the server.
var (
	ErrShort      = errors.New("heartbeat: packet shorter than its format requires")
	ErrOversized  = errors.New("heartbeat: packet larger than MaxPacketSize")
	ErrBadVersion = errors.New("heartbeat: unsupported protocol version")
	ErrMalformed  = errors.New("heartbeat: malformed packet")
)

// Packet is a decoded heartbeat or ack. Decode fills a caller-owned Packet
// without allocating; Host then points into the decoded buffer and is only
// valid as long as that buffer is not reused.
type Packet struct {
	// Type is TypeHeartbeat or TypeAck.
	Type Type
	// Flags are the packet's option bits; FlagEnrolled or 0.
	Flags Flags
	// Session is the random id the agent chose when it started.
	Session uint64
	// Seq increases by one per heartbeat, per session and address family.
	Seq uint64
	// SentNanos is the agent's clock (unix nanoseconds) when it sent the
	// heartbeat; an ack echoes it.
	SentNanos int64
	// ServerNanos is the server's clock (unix nanoseconds) when it sent the
	// ack. Acks only.
	ServerNanos int64
	// IntervalMS is the agent's sending interval in milliseconds.
	// Heartbeats only.
	IntervalMS uint32
	// RTTMicros is the round-trip time the agent measured for this family
	// since its previous heartbeat, in microseconds; 0 means none.
	// Heartbeats only.
	RTTMicros uint32
	// Host is the sender's host name. Heartbeats only.
	Host []byte
}

// Interval returns IntervalMS as a duration.
func (p *Packet) Interval() time.Duration {
	return time.Duration(p.IntervalMS) * time.Millisecond
}

// Decode parses b into p. It checks structure only: sizes, magic, version,
// type, flags, host name and interval; the MAC is checked by Signer.Verify.
// It never allocates and never retains b beyond p.Host.
func Decode(b []byte, p *Packet) error {
	if len(b) > MaxPacketSize {
		return ErrOversized
	}
	if len(b) < headerSize {
		return ErrShort
	}
	if b[0] != magic0 || b[1] != magic1 {
		return ErrMalformed
	}
	if b[2] != Version {
		return ErrBadVersion
	}
	p.Type, p.Flags = Type(b[3]), Flags(b[4])
	switch p.Type {
	case TypeHeartbeat:
		// A host length out of range is malformed whatever follows it
		// (PROTOCOL.md), also in a packet too short for any host.
		if len(b) > hbHostLenOff {
			if n := int(b[hbHostLenOff]); n == 0 || n > MaxHostLen {
				return ErrMalformed
			}
		}
		if len(b) < HeartbeatMinSize {
			return ErrShort
		}
		if p.Flags&^FlagEnrolled != 0 {
			return ErrMalformed
		}
		n := int(b[hbHostLenOff])
		if n == 0 || n > MaxHostLen {
			return ErrMalformed
		}
		switch size := hbHostOff + n + TagSize; {
		case len(b) < size:
			return ErrShort
		case len(b) > size:
			return ErrMalformed
		}
		p.Host = b[hbHostOff : hbHostOff+n : hbHostOff+n]
		if !validHost(p.Host) {
			return ErrMalformed
		}
		p.IntervalMS = binary.BigEndian.Uint32(b[hbIntervalOff:])
		if !validInterval(p.IntervalMS) {
			return ErrMalformed
		}
		p.RTTMicros = binary.BigEndian.Uint32(b[hbRTTOff:])
		p.ServerNanos = 0
	case TypeAck:
		if len(b) < AckSize {
			return ErrShort
		}
		if len(b) > AckSize || p.Flags != 0 {
			return ErrMalformed
		}
		p.ServerNanos = int64(binary.BigEndian.Uint64(b[ackServerOff:]))
		p.IntervalMS, p.RTTMicros, p.Host = 0, 0, nil
	default:
		return ErrMalformed
	}
	p.Session = binary.BigEndian.Uint64(b[offSession:])
	p.Seq = binary.BigEndian.Uint64(b[offSeq:])
	p.SentNanos = int64(binary.BigEndian.Uint64(b[offSent:]))
	return nil
}

// ValidHost reports whether name is acceptable as a heartbeat host name:
// 1 to MaxHostLen bytes of [A-Za-z0-9._-].
func ValidHost(name string) bool { return validHost(name) }

func validHost[T string | []byte](h T) bool {
	if len(h) == 0 || len(h) > MaxHostLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validInterval(ms uint32) bool {
	d := time.Duration(ms) * time.Millisecond
	return d >= MinInterval && d <= MaxInterval
}

// Signer computes and checks packet tags under one key. It keeps a keyed
// HMAC state and a scratch buffer so that signing and verifying do not
// allocate. A Signer is not safe for concurrent use.
type Signer struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewSigner returns a Signer for key (a host key, or DeriveHostKey's result).
func NewSigner(key []byte) *Signer {
	return &Signer{mac: hmac.New(sha256.New, key)}
}

func (s *Signer) tag(msg []byte) []byte {
	s.mac.Reset()
	s.mac.Write(msg)
	return s.mac.Sum(s.sum[:0])[:TagSize]
}

// Verify reports whether the packet b, already accepted by Decode, ends in
// the correct tag for this key. The comparison is constant-time.
func (s *Signer) Verify(b []byte) bool {
	if len(b) < headerSize+TagSize {
		return false
	}
	n := len(b) - TagSize
	return hmac.Equal(s.tag(b[:n]), b[n:])
}

// AppendHeartbeat appends the signed heartbeat p to dst and returns the
// extended slice. p.Type is ignored. It returns ErrMalformed, and dst
// unchanged, when the host name, flags or interval could not be decoded.
func (s *Signer) AppendHeartbeat(dst []byte, p *Packet) ([]byte, error) {
	if !validHost(p.Host) || !validInterval(p.IntervalMS) || p.Flags&^FlagEnrolled != 0 {
		return dst, ErrMalformed
	}
	start := len(dst)
	dst = appendHeader(dst, TypeHeartbeat, p.Flags, p)
	dst = binary.BigEndian.AppendUint32(dst, p.IntervalMS)
	dst = binary.BigEndian.AppendUint32(dst, p.RTTMicros)
	dst = append(dst, byte(len(p.Host)))
	dst = append(dst, p.Host...)
	return append(dst, s.tag(dst[start:])...), nil
}

// AppendAck appends the signed ack for p to dst: p.Session, p.Seq and
// p.SentNanos as received, and p.ServerNanos. Flags and the heartbeat-only
// fields are ignored.
func (s *Signer) AppendAck(dst []byte, p *Packet) []byte {
	start := len(dst)
	dst = appendHeader(dst, TypeAck, 0, p)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.ServerNanos))
	return append(dst, s.tag(dst[start:])...)
}

func appendHeader(dst []byte, t Type, f Flags, p *Packet) []byte {
	dst = append(dst, magic0, magic1, Version, byte(t), byte(f))
	dst = binary.BigEndian.AppendUint64(dst, p.Session)
	dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	return binary.BigEndian.AppendUint64(dst, uint64(p.SentNanos))
}

// enrollContext separates enroll-derived keys from any other use of the
// enroll key.
const enrollContext = "hbd-enroll-v1\n"

// DeriveHostKey returns the key a dynamic host signs its heartbeats with:
// HMAC-SHA256(enrollKey, "hbd-enroll-v1\n" + host). The daemon's KeyFunc
// returns it for hosts not in watchhosts when an enroll key is configured;
// an agent configured with the enroll key instead of a host key derives the
// same key (ClientConfig.EnrollKey), which proves it holds the enroll key
// without ever sending it.
func DeriveHostKey(enrollKey []byte, host string) []byte {
	m := hmac.New(sha256.New, enrollKey)
	m.Write([]byte(enrollContext))
	m.Write([]byte(host))
	return m.Sum(nil)
}
