// Package heartbeat carries hbc's UDP heartbeats to hbd and turns them into
// per-host, per-address-family connection state.
//
// The pieces, in the order data flows through them:
//
//   - The wire format (Packet, Decode, Signer): a compact, versioned binary
//     datagram signed with HMAC-SHA256 under the host's key. docs/PROTOCOL.md
//     describes it byte by byte.
//   - Client, run by the agent: sends heartbeats over IPv4 and IPv6
//     independently, verifies the server's signed acks and reports the
//     measured round-trip time in its next heartbeat.
//   - Server, run by the daemon: one UDP socket per address family, verifies
//     every datagram before it touches any state, counts what it drops by
//     reason (Stats) and answers each valid heartbeat with an ack that is
//     never larger than the request.
//   - Tracker: connection state per host and family (UP, LATE, DOWN), the
//     host's own state (UP, DEGRADED, DOWN), latency, loss and clock offset,
//     and change callbacks for the journal, the live feed and alerting.
//     Hosts the daemon expects (Expect) go DOWN when they are not heard
//     from within their timeout, whether they never reported or stopped
//     while the daemon was down; the families a host used before a restart
//     are awaited too.
//
// Wiring in the daemon:
//
//	tr := heartbeat.NewTracker(heartbeat.TrackerConfig{Timeout: hostTimeout, OnChange: journal, OnClock: clockAlert})
//	tr.Expect(heartbeat.Expectation{Host: "web01", LastSeen: persisted["web01"], From: started})
//	srv, err := heartbeat.NewServer(heartbeat.ServerConfig{
//		Addr4: "0.0.0.0:50003", Addr6: "[::]:50003", Keys: hostKey, Tracker: tr,
//	})
//	go tr.Run(ctx)
//	go srv.Serve(ctx)
//
// and in the agent:
//
//	c, err := heartbeat.NewClient(heartbeat.ClientConfig{
//		Host: "web01", Key: key, Interval: 5 * time.Second,
//		Addr4: "hbd.example.net:50003", Addr6: "hbd.example.net:50003",
//	})
//	go c.Run(ctx)
package heartbeat
