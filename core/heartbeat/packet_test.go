package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func samplePacket() Packet {
	return Packet{
		Flags:      FlagEnrolled,
		Session:    0x0102030405060708,
		Seq:        42,
		SentNanos:  1711234567123456789,
		IntervalMS: 5000,
		RTTMicros:  210,
		Host:       []byte("web01.example-net_1"),
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	s := NewSigner(keyWeb01)
	in := samplePacket()
	b, err := s.AppendHeartbeat(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	if want := hbHostOff + len(in.Host) + TagSize; len(b) != want {
		t.Fatalf("size %d, want %d", len(b), want)
	}
	var out Packet
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Type != TypeHeartbeat || out.Flags != in.Flags || out.Session != in.Session || out.Seq != in.Seq ||
		out.SentNanos != in.SentNanos || out.IntervalMS != in.IntervalMS || out.RTTMicros != in.RTTMicros ||
		!bytes.Equal(out.Host, in.Host) {
		t.Fatalf("decoded %+v, want %+v", out, in)
	}
	if !s.Verify(b) {
		t.Fatal("tag does not verify under the signing key")
	}
	if NewSigner(keyDB01).Verify(b) {
		t.Fatal("tag verifies under another key")
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if s.Verify(c) {
			t.Fatalf("flipping a bit of byte %d still verifies", i)
		}
	}
}

func TestAckRoundTripAndSize(t *testing.T) {
	s := NewSigner(keyWeb01)
	hb := samplePacket()
	hb.ServerNanos = 1711234567999999999
	b := s.AppendAck(nil, &hb)
	if len(b) != AckSize {
		t.Fatalf("ack is %d bytes, want %d", len(b), AckSize)
	}
	var out Packet
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Type != TypeAck || out.Flags != 0 || out.Session != hb.Session || out.Seq != hb.Seq ||
		out.SentNanos != hb.SentNanos || out.ServerNanos != hb.ServerNanos || out.Host != nil {
		t.Fatalf("decoded %+v", out)
	}
	if !s.Verify(b) {
		t.Fatal("ack tag does not verify")
	}
	// The smallest heartbeat has a one-byte host name; the ack must not be
	// larger than it, or the server could amplify.
	if AckSize > HeartbeatMinSize {
		t.Fatalf("AckSize %d > HeartbeatMinSize %d", AckSize, HeartbeatMinSize)
	}
	if HeartbeatMaxSize > MaxPacketSize {
		t.Fatalf("HeartbeatMaxSize %d > MaxPacketSize %d", HeartbeatMaxSize, MaxPacketSize)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := heartbeat(t, keyWeb01, Packet{Session: 1, Seq: 1, Host: []byte("web01")})
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", valid[:headerSize-1], ErrShort},
		{"truncated fixed part", valid[:HeartbeatMinSize-1], ErrShort},
		{"truncated tag", valid[:len(valid)-1], ErrShort},
		{"oversized", make([]byte, MaxPacketSize+1), ErrOversized},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'x'; return b }), ErrMalformed},
		{"version 2", mod(func(b []byte) []byte { b[2] = 2; return b }), ErrBadVersion},
		{"version 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrBadVersion},
		{"unknown type", mod(func(b []byte) []byte { b[3] = 9; return b }), ErrMalformed},
		{"unknown flag", mod(func(b []byte) []byte { b[4] = 0x80; return b }), ErrMalformed},
		{"trailing byte", append(bytes.Clone(valid), 0), ErrMalformed},
		{"empty host", mod(func(b []byte) []byte { b[hbHostLenOff] = 0; return b }), ErrMalformed},
		// A zero-length host with no host bytes is as long as its header
		// says: malformed (PROTOCOL.md), it was counted short.
		{"empty host, no host bytes", mod(func(b []byte) []byte {
			b[hbHostLenOff] = 0
			return append(b[:hbHostOff], make([]byte, TagSize)...)
		}), ErrMalformed},
		{"host length over 64", mod(func(b []byte) []byte { b[hbHostLenOff] = 65; return b }), ErrMalformed},
		{"host length beyond packet", mod(func(b []byte) []byte { b[hbHostLenOff] = 30; return b }), ErrShort},
		{"host with slash", mod(func(b []byte) []byte { b[hbHostOff] = '/'; return b }), ErrMalformed},
		{"interval zero", mod(func(b []byte) []byte { copy(b[hbIntervalOff:], []byte{0, 0, 0, 0}); return b }), ErrMalformed},
		{"interval over an hour", mod(func(b []byte) []byte { copy(b[hbIntervalOff:], []byte{0xff, 0, 0, 0}); return b }), ErrMalformed},
		{"ack with flags", func() []byte {
			a := NewSigner(keyWeb01).AppendAck(nil, &Packet{Seq: 1})
			a[4] = 1
			return a
		}(), ErrMalformed},
		{"ack too long", append(NewSigner(keyWeb01).AppendAck(nil, &Packet{Seq: 1}), 0), ErrMalformed},
		{"ack too short", NewSigner(keyWeb01).AppendAck(nil, &Packet{Seq: 1})[:AckSize-1], ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := Decode(tt.b, &p); !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendHeartbeatRefusesWhatDecodeWouldReject(t *testing.T) {
	s := NewSigner(keyWeb01)
	for name, p := range map[string]Packet{
		"bad host":     {Host: []byte("web 01"), IntervalMS: 1000},
		"long host":    {Host: []byte(strings.Repeat("a", MaxHostLen+1)), IntervalMS: 1000},
		"no interval":  {Host: []byte("web01")},
		"unknown flag": {Host: []byte("web01"), IntervalMS: 1000, Flags: 2},
	} {
		if b, err := s.AppendHeartbeat([]byte("x"), &p); !errors.Is(err, ErrMalformed) || string(b) != "x" {
			t.Errorf("%s: AppendHeartbeat = %q, %v; want dst unchanged, ErrMalformed", name, b, err)
		}
	}
	long := Packet{Host: []byte(strings.Repeat("a", MaxHostLen)), IntervalMS: 1000}
	if b, err := s.AppendHeartbeat(nil, &long); err != nil || len(b) != HeartbeatMaxSize {
		t.Fatalf("64-byte host: %d bytes, %v", len(b), err)
	}
}

func TestValidHost(t *testing.T) {
	for _, h := range []string{"a", "web01", "web-01.example.net", "A_B", strings.Repeat("x", 64)} {
		if !ValidHost(h) {
			t.Errorf("ValidHost(%q) = false", h)
		}
	}
	for _, h := range []string{"", "web 01", "web/01", "wéb", "a:b", strings.Repeat("x", 65)} {
		if ValidHost(h) {
			t.Errorf("ValidHost(%q) = true", h)
		}
	}
}

func TestDeriveHostKey(t *testing.T) {
	a := DeriveHostKey(enrollKey, "web01")
	if !bytes.Equal(a, DeriveHostKey(enrollKey, "web01")) {
		t.Fatal("derivation is not deterministic")
	}
	if bytes.Equal(a, DeriveHostKey(enrollKey, "web02")) || bytes.Equal(a, DeriveHostKey([]byte("other"), "web01")) {
		t.Fatal("derived keys collide across hosts or enroll keys")
	}
	if len(a) != 32 {
		t.Fatalf("derived key is %d bytes", len(a))
	}
}

func TestCodecDoesNotAllocate(t *testing.T) {
	s := NewSigner(keyWeb01)
	p := samplePacket()
	buf := make([]byte, 0, MaxPacketSize)
	b, _ := s.AppendHeartbeat(buf, &p)
	var out Packet
	allocs := testing.AllocsPerRun(1000, func() {
		b, _ = s.AppendHeartbeat(buf[:0], &p)
		if Decode(b, &out) != nil || !s.Verify(b) {
			t.Fatal("round trip failed")
		}
		out.ServerNanos = time.Now().UnixNano()
		_ = s.AppendAck(buf[:0], &out)
	})
	if allocs != 0 {
		t.Fatalf("encode+decode+verify+ack: %v allocations per run, want 0", allocs)
	}
}

// TestDocumentedExample keeps the worked example of docs/PROTOCOL.md true,
// computing the tags with crypto/hmac directly rather than through Signer.
func TestDocumentedExample(t *testing.T) {
	const (
		wantHB  = "68620101000123456789abcdef000000000000000117bf86c5b4c3531500001388000000d2057765623031" + "63de1a7e06f94f969de87cab924e310c"
		wantAck = "68620102000123456789abcdef000000000000000117bf86c5b4c3531517bf86c5b4c864d4" + "9731b19e79358d77597e0be50a7cbe51"
	)
	key := []byte("example-key")
	s := NewSigner(key)
	p := Packet{Session: 0x0123456789abcdef, Seq: 1, SentNanos: 1711234567123456789, IntervalMS: 5000, RTTMicros: 210, Host: []byte("web01")}
	hb, _ := s.AppendHeartbeat(nil, &p)
	p.ServerNanos = 1711234567123789012
	ack := s.AppendAck(nil, &p)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{{"heartbeat", hb, wantHB}, {"ack", ack, wantAck}} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("%s\n got %x\nwant %s", c.name, c.got, c.want)
		}
		m := hmac.New(sha256.New, key)
		m.Write(c.got[:len(c.got)-TagSize])
		if !bytes.Equal(m.Sum(nil)[:TagSize], c.got[len(c.got)-TagSize:]) {
			t.Errorf("%s: tag is not the truncated HMAC-SHA256 of the bytes before it", c.name)
		}
	}
}
