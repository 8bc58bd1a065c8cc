package heartbeat

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// DefaultReadBatch is how many datagrams a reader takes from its socket,
// and how many acks it writes back, per system call (recvmmsg and sendmmsg)
// where the platform has them (Linux).
const DefaultReadBatch = 64

// batchConn is what ipv4.PacketConn and ipv6.PacketConn offer for reading
// and writing several datagrams per system call. ipv4.Message and
// ipv6.Message are the same type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchOf returns c's batch reader and writer for family fi, or nil where
// reading in batches is not available: only Linux reads more than one
// datagram per call, and elsewhere the single reads of readOne allocate
// less.
func batchOf(c *net.UDPConn, fi int) batchConn {
	if runtime.GOOS != "linux" {
		return nil
	}
	if fi == 0 {
		return ipv4.NewPacketConn(c)
	}
	return ipv6.NewPacketConn(c)
}

// readBatched serves socket c (family fi) n datagrams per system call:
// every datagram is verified and applied on its own (handle), as readOne
// does, and the acks of one batch leave together.
func (s *Server) readBatched(c *net.UDPConn, bc batchConn, fi, n int, ctr *counters) {
	in := make([]ipv4.Message, n)
	for i := range in {
		// One byte more than allowed, as in readOne.
		in[i].Buffers = [][]byte{make([]byte, MaxPacketSize+1)}
	}
	acks := make([]ipv4.Message, n)
	for i := range acks {
		acks[i].Buffers = [][]byte{make([]byte, 0, AckSize)}
	}
	for {
		got, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			s.log.Warn("heartbeat read failed", "family", families[fi], "error", err)
			// Whatever it was, do not spin on it.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ctr.reads.Add(1)
		out := 0
		for i := range in[:got] {
			m := &in[i]
			from := addrPortOf(m.Addr, fi)
			ack, ok := s.handle(m.Buffers[0][:m.N], from, fi, acks[out].Buffers[0][:0], time.Now(), ctr)
			if !ok {
				continue
			}
			acks[out].Buffers[0] = ack
			acks[out].Addr = m.Addr
			out++
		}
		s.writeAcks(bc, acks[:out], fi, ctr)
	}
}

// writeAcks sends acks, as many per system call as the socket takes. An
// ack the socket refuses is counted and skipped, as in readOne.
func (s *Server) writeAcks(bc batchConn, acks []ipv4.Message, fi int, ctr *counters) {
	for len(acks) > 0 {
		sent, err := bc.WriteBatch(acks, 0)
		if err != nil || sent <= 0 {
			// sendmmsg reports an error only for the first message of the
			// call: that one is lost, the rest are tried again.
			ctr.ackErrors.Add(1)
			s.log.Debug("heartbeat ack failed", "family", families[fi], "to", acks[0].Addr, "error", err)
			sent = 1
		} else {
			ctr.acked.Add(uint64(sent))
		}
		acks = acks[sent:]
	}
}

// addrPortOf is the sender of a datagram read in a batch, as
// ReadFromUDPAddrPort reports it: a plain IPv4 address on the IPv4 socket.
func addrPortOf(a net.Addr, fi int) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	if fi == 0 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}
