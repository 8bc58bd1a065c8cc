package heartbeat

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that Decode never panics, never reads beyond its input,
// and that whatever it accepts re-encodes to exactly the same bytes (so no two
// encodings mean the same packet). The committed seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	s := NewSigner(keyWeb01)
	hb := samplePacket()
	b, _ := s.AppendHeartbeat(nil, &hb)
	f.Add(b)
	hb.ServerNanos = 1
	f.Add(s.AppendAck(nil, &hb))
	f.Add([]byte("hb"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var p Packet
		if Decode(b, &p) != nil {
			return
		}
		if !bytes.Equal(in, b) {
			t.Fatal("Decode modified its input")
		}
		if len(b) > MaxPacketSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		// Re-encode with a throwaway key and compare all but the tag.
		var out []byte
		switch p.Type {
		case TypeHeartbeat:
			var err error
			if out, err = s.AppendHeartbeat(nil, &p); err != nil {
				t.Fatalf("decoded heartbeat does not re-encode: %v", err)
			}
		case TypeAck:
			out = s.AppendAck(nil, &p)
		default:
			t.Fatalf("accepted type %d", p.Type)
		}
		if len(out) != len(b) || !bytes.Equal(out[:len(out)-TagSize], b[:len(b)-TagSize]) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}
