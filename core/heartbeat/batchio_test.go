package heartbeat

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Many datagrams queued on a socket before the server reads it: with
// batched reads (recvmmsg, sendmmsg) and with single reads (ReadBatch 1,
// the fallback), over IPv4 and IPv6, every valid heartbeat is acked
// exactly once with its own session and sequence number, signed with its
// host's key, to the socket that sent it; every bad one is counted under
// its reason and answered with nothing; and the tracker records each
// connection's source address as the single reads did. Batching itself is
// proven from the read counter: fewer system calls than datagrams.
func TestBatchedReadsAnswerEveryDatagram(t *testing.T) {
	for _, f := range []Family{IPv4, IPv6} {
		for _, batch := range []int{1, DefaultReadBatch} {
			t.Run(fmt.Sprintf("%s/batch=%d", f, batch), func(t *testing.T) {
				if f == IPv6 {
					if ok, why := haveIPv6(t); !ok {
						t.Skip(why)
					}
				}
				testBatchedReads(t, f, batch)
			})
		}
	}
}

func testBatchedReads(t *testing.T, f Family, batch int) {
	const (
		agents  = 4  // client sockets
		hosts   = 40 // dynamic hosts, ten per socket
		seqs    = 4  // heartbeats per host
		badMACs = 12
		bigs    = 6
	)
	tr := NewTracker(TrackerConfig{})
	cfg := ServerConfig{Keys: testKeys(enrollKey), Tracker: tr, ReadBatch: batch}
	if f == IPv4 {
		cfg.Addr4 = "127.0.0.1:0"
	} else {
		cfg.Addr6 = "[::1]:0"
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	var conns []*rawAgent
	for range agents {
		conns = append(conns, dialRaw(t, srv, f))
	}
	hostOf := func(h int) string { return fmt.Sprintf("batch-%02d", h) }
	// Queued before Serve, so the first read finds them all waiting.
	valid, sent := 0, 0
	for seq := 1; seq <= seqs; seq++ {
		for h := 0; h < hosts; h++ {
			a := conns[h%agents]
			a.send(heartbeat(t, DeriveHostKey(enrollKey, hostOf(h)), Packet{Session: uint64(h), Seq: uint64(seq), Host: []byte(hostOf(h))}))
			valid++
			sent++
			if k := sent % 13; k == 0 && sent/13 <= badMACs {
				a.send(heartbeat(t, []byte("not-the-key-0123456789abcdef"), Packet{Session: 1000, Seq: 1, Host: []byte(hostOf(h))}))
				sent++
			}
			if sent%29 == 0 && sent/29 <= bigs {
				a.send(bytes.Repeat([]byte{1}, MaxPacketSize+10))
				sent++
			}
		}
	}
	bad := sent - valid

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	defer func() { cancel(); <-served }()

	var mu sync.Mutex
	acked := map[[2]uint64]int{}
	var wg sync.WaitGroup
	for ai, a := range conns {
		want := 0
		for h := ai; h < hosts; h += agents {
			want += seqs
		}
		wg.Go(func() {
			for got := 0; got < want; got++ {
				ack := a.recv(30 * time.Second)
				if ack == nil {
					t.Errorf("socket %d: %d of %d acks", ai, got, want)
					return
				}
				var p Packet
				if err := Decode(ack, &p); err != nil || p.Type != TypeAck {
					t.Errorf("socket %d: not an ack: %v", ai, err)
					return
				}
				h := int(p.Session)
				if h%agents != ai {
					t.Errorf("socket %d got the ack of host %d (another socket's)", ai, h)
				}
				if !NewSigner(DeriveHostKey(enrollKey, hostOf(h))).Verify(ack) {
					t.Errorf("ack of host %d seq %d not signed with its key", h, p.Seq)
				}
				mu.Lock()
				acked[[2]uint64{p.Session, p.Seq}]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for h := 0; h < hosts; h++ {
		for seq := 1; seq <= seqs; seq++ {
			if n := acked[[2]uint64{uint64(h), uint64(seq)}]; n != 1 {
				t.Errorf("host %d seq %d acked %d times", h, seq, n)
			}
		}
		c, ok := connection(tr, hostOf(h), f)
		if want := conns[h%agents].localAddr().String(); !ok || c.State != StateUp || c.Address != want {
			t.Errorf("host %d: connection %+v (known %v), want UP from %s", h, c, ok, want)
		}
	}
	// The last datagrams sent are valid, so every one was read once their
	// acks are back; wait for the count anyway rather than rely on it.
	for deadline := time.Now().Add(30 * time.Second); srv.Stats().Received < uint64(sent) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	st := srv.Stats()
	if st.Received != uint64(sent) || st.Accepted != uint64(valid) || st.Acked != uint64(valid) || st.AckErrors != 0 {
		t.Fatalf("stats %+v, want %d received, %d accepted and acked", st, sent, valid)
	}
	if st.Dropped[DropBadMAC]+st.Dropped[DropOversized] != uint64(bad) || st.Dropped[DropOversized] != bigs {
		t.Fatalf("dropped %v, want %d bad MACs and %d oversized", st.Dropped, bad-bigs, bigs)
	}
	var reads uint64
	for i := range srv.ctrs {
		reads += srv.ctrs[i].reads.Load()
	}
	switch {
	case batch == 1 && reads != uint64(sent):
		t.Fatalf("single reads: %d reads for %d datagrams", reads, sent)
	case batch > 1 && runtime.GOOS == "linux" && reads > uint64((sent+batch-1)/batch):
		// All were queued before the first read: full batches.
		t.Fatalf("batched reads: %d reads for %d datagrams, want at most %d", reads, sent, (sent+batch-1)/batch)
	}
	t.Logf("%d datagrams in %d reads", sent, reads)
}
