package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
)

// dialBatched connects as user asking for multi-message frames.
func dialBatched(t *testing.T, h *ws.Hub, url, user string) *websocket.Conn {
	t.Helper()
	return mustDial(t, h, url+"?batch=1", user)
}

// readBatch reads one frame of a batched client, which must be a JSON
// array of messages.
func readBatch(t *testing.T, c *websocket.Conn) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(b) == 0 || b[0] != '[' {
		t.Fatalf("batched frame is not an array: %.80s", b)
	}
	var fs []frame
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatalf("batched frame %.80s: %v", b, err)
	}
	if len(fs) == 0 {
		t.Fatal("empty batched frame")
	}
	return fs
}

// label names a recorded message: its type and the "i" of its data (for
// messages) or the plugin name (for samples) or the alert text.
func label(t *testing.T, f frame) string {
	t.Helper()
	var d struct {
		I      *int   `json:"i"`
		Plugin string `json:"plugin"`
		Text   string `json:"text"`
		Name   string `json:"name"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.I != nil:
		return fmt.Sprintf("%s %d", f.Type, *d.I)
	case d.Plugin != "":
		return f.Type + " " + d.Plugin
	case d.Text != "":
		return f.Type + " " + d.Text
	}
	return f.Type + " " + d.Name
}

// publishMixed publishes n messages of three types, none of which
// replaces another, and returns their labels in order.
func publishMixed(h *ws.Hub, from, n int) []string {
	var want []string
	for i := from; i < from+n; i++ {
		switch i % 3 {
		case 0:
			h.PublishMessage("hostA", map[string]any{"i": i})
			want = append(want, fmt.Sprintf("message %d", i))
		case 1:
			p := fmt.Sprintf("p%d", i)
			h.PublishPlugin("hostB", p, float64(i), map[string]any{"v": i})
			want = append(want, "plugin "+p)
		case 2:
			txt := fmt.Sprintf("a%d", i)
			h.PublishAlert(ws.Alert{Hostname: "hostA", Text: txt})
			want = append(want, "alert "+txt)
		}
	}
	return want
}

// A batched client gets every message, in publishing order, in frames of
// several messages: with a flush interval of an hour only the first
// message (the feed was quiet) leaves at once; the rest leave when
// MaxBatch are held, so the frames are exactly known.
func TestBatchedClientGetsEveryMessageInOrder(t *testing.T) {
	h, url := newHub(t, ws.Options{FlushInterval: time.Hour, MaxBatch: 100, SendQueue: 1024})
	c := dialBatched(t, h, url, "bob")
	plain := mustDial(t, h, url, "bob")

	want := publishMixed(h, 0, 1)
	first := readBatch(t, c)
	if len(first) != 1 || label(t, first[0]) != want[0] {
		t.Fatalf("first frame %v, want [%s]", first, want[0])
	}
	want = append(want, publishMixed(h, 1, 300)...)

	var got []string
	got = append(got, label(t, first[0]))
	for i := 0; i < 3; i++ {
		fs := readBatch(t, c)
		if len(fs) != 100 {
			t.Fatalf("frame %d has %d messages, want 100", i+1, len(fs))
		}
		for _, f := range fs {
			got = append(got, label(t, f))
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("batched client got\n%v\nwant\n%v", got, want)
	}

	// The client beside it, which did not ask, got one message per frame.
	for i, w := range want {
		f := mustRead(t, plain)
		if l := label(t, f); l != w {
			t.Fatalf("plain client's frame %d: %s, want %s", i, l, w)
		}
	}
}

// Without batch=1 nothing changes: every frame is one JSON object, also
// while batched clients are connected; batch=0 is the same as none.
func TestPlainClientStillGetsSingleMessages(t *testing.T) {
	h, url := newHub(t, ws.Options{})
	dialBatched(t, h, url, "root")
	plain := mustDial(t, h, url+"?batch=0", "bob")
	want := publishMixed(h, 0, 30)
	for i, w := range want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := plain.Read(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != '{' {
			t.Fatalf("frame %d is not one message: %.60s", i, b)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if l := label(t, f); l != w {
			t.Fatalf("frame %d: %s, want %s", i, l, w)
		}
	}
}

func TestBadBatchParameterIs400(t *testing.T) {
	_, url := newHub(t, ws.Options{})
	_, resp, err := dial(t, url+"?batch=yes", "bob", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("batch=yes: %v %v", resp, err)
	}
}

// Each batched client gets only what it may see, and clients that may see
// the same get byte-identical frames.
func TestBatchedFramesFollowAccess(t *testing.T) {
	h, url := newHub(t, ws.Options{FlushInterval: time.Hour, MaxBatch: 4})
	alice := dialBatched(t, h, url, "alice") // hostA
	bob1 := dialBatched(t, h, url, "bob")    // hostA, hostB
	bob2 := mustDial(t, h, url+"?types=host,plugin,message&batch=1", "bob")
	root := dialBatched(t, h, url, "root") // everything, daemon-wide too

	h.PublishMessage("", map[string]any{"i": 0}) // daemon-wide: leaves at once
	if fs := readBatch(t, root); len(fs) != 1 || label(t, fs[0]) != "message 0" {
		t.Fatalf("root's first frame %v", fs)
	}
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})
	h.PublishHost(ws.Host{Name: "hostB", State: "DOWN"})
	h.PublishAlert(ws.Alert{Hostname: "hostB", Text: "b"})
	h.PublishMessage("hostA", map[string]any{"i": 1}) // the fourth: flush

	labels := func(c *websocket.Conn) string {
		var ls []string
		for _, f := range readBatch(t, c) {
			ls = append(ls, label(t, f))
		}
		return strings.Join(ls, ",")
	}
	for _, tc := range []struct {
		name string
		c    *websocket.Conn
		want string
	}{
		{"alice", alice, "host hostA,message 1"},
		{"bob", bob1, "host hostA,host hostB,alert b,message 1"},
		{"bob without alerts", bob2, "host hostA,host hostB,message 1"},
		{"root", root, "host hostA,host hostB,alert b,message 1"},
	} {
		if got := labels(tc.c); got != tc.want {
			t.Errorf("%s got %s, want %s", tc.name, got, tc.want)
		}
	}

	// Two administrators get the same bytes.
	root2 := dialBatched(t, h, url, "root")
	for i := 2; i < 6; i++ {
		h.PublishMessage("", map[string]any{"i": i})
	}
	raw := func(c *websocket.Conn) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if a, b := raw(root), raw(root2); a != b || !strings.Contains(a, `"i":5`) {
		t.Fatalf("administrators' frames differ or miss a message:\n%s\n%s", a, b)
	}
}

// A host's newer state replaces its held older one in place, and a client
// that connects while messages are held does not get those published
// before it connected (its snapshot already covers them).
func TestBatchedClientCoalescesAndStartsAtItsConnection(t *testing.T) {
	h, url := newHub(t, ws.Options{FlushInterval: time.Hour, MaxBatch: 5})
	early := dialBatched(t, h, url, "bob")
	h.PublishMessage("hostA", map[string]any{"i": 0}) // the feed was quiet: at once
	readBatch(t, early)

	h.PublishHost(ws.Host{Name: "hostA", State: "UP", Reason: "old"}) // held
	h.PublishMessage("hostA", map[string]any{"i": 1})                 // held
	late := dialBatched(t, h, url, "bob")
	h.PublishHost(ws.Host{Name: "hostA", State: "DOWN", Reason: "new"}) // replaces "old" in place
	for i := 2; i < 5; i++ {
		h.PublishMessage("hostA", map[string]any{"i": i}) // the fifth held: flush
	}
	reasons := func(fs []frame) string {
		var out []string
		for _, f := range fs {
			l := label(t, f)
			if f.Type == ws.TypeHost {
				l += " " + dataOf(t, f)["reason"].(string)
			}
			out = append(out, l)
		}
		return strings.Join(out, ",")
	}
	if got, want := reasons(readBatch(t, early)), "host hostA new,message 1,message 2,message 3,message 4"; got != want {
		t.Fatalf("early client got %s, want %s", got, want)
	}
	if got, want := reasons(readBatch(t, late)), "host hostA new,message 2,message 3,message 4"; got != want {
		t.Fatalf("late client got %s, want %s", got, want)
	}
	if v := counter(h, "hbd_ws_coalesced_total"); v != 1 {
		t.Fatalf("hbd_ws_coalesced_total = %v, want 1", v)
	}
}

// The snapshot of a batched client comes as arrays of host messages.
func TestBatchedSnapshotIsAnArray(t *testing.T) {
	h, url := newHub(t, ws.Options{Snapshot: func() []ws.Host {
		return []ws.Host{{Name: "hostA", State: "UP"}, {Name: "hostB", State: "DOWN"}}
	}})
	c := dialBatched(t, h, url, "bob")
	fs := readBatch(t, c)
	if len(fs) != 2 || label(t, fs[0]) != "host hostA" || label(t, fs[1]) != "host hostB" {
		t.Fatalf("snapshot %v", fs)
	}
}

// A batched client that stops reading is dropped on the write timeout
// like any other, and the others keep receiving.
func TestStalledBatchedClientIsDropped(t *testing.T) {
	h, url := newHub(t, ws.Options{SendQueue: 1 << 16, WriteTimeout: 100 * time.Millisecond, FlushInterval: time.Millisecond})
	dialBatched(t, h, url, "bob") // stalled: never reads
	fast := dialBatched(t, h, url, "bob")

	big := strings.Repeat("x", 32<<10)
	for i := 0; i < 64; i++ { // 2 MB
		h.PublishMessage("hostA", map[string]any{"i": i, "msg": big})
		if fs := readBatch(t, fast); len(fs) != 1 || fs[0].Type != ws.TypeMessage {
			t.Fatalf("fast client got %v", fs)
		}
	}
	testutil.Eventually(t, "stalled client dropped", 10*time.Second, func() bool { return h.Clients() == 1 })
	if v := counter(h, "hbd_ws_dropped_total", "write_timeout"); v != 1 {
		t.Fatalf("hbd_ws_dropped_total{reason=write_timeout} = %v, want 1", v)
	}
	h.PublishHost(ws.Host{Name: "hostA", State: "UP"})
	if fs := readBatch(t, fast); fs[0].Type != ws.TypeHost {
		t.Fatalf("fast client after the drop: %v", fs)
	}
}

// A batched client whose queue fills is dropped (queue_full) without
// blocking the publisher.
func TestBatchedClientWithAFullQueueIsDropped(t *testing.T) {
	h, url := newHub(t, ws.Options{SendQueue: 2, WriteTimeout: time.Hour, MaxBatch: 1, FlushInterval: time.Hour})
	dialBatched(t, h, url, "bob") // never reads
	big := strings.Repeat("x", 64<<10)
	for i := 0; h.Dropped() == 0; i++ {
		if i == 4000 {
			t.Fatal("stalled client never dropped")
		}
		h.PublishMessage("hostA", map[string]any{"i": i, "msg": big})
	}
	if v := counter(h, "hbd_ws_dropped_total", "queue_full"); v != 1 {
		t.Fatalf("hbd_ws_dropped_total{reason=queue_full} = %v, want 1", v)
	}
	testutil.Eventually(t, "client removed", 5*time.Second, func() bool { return h.Clients() == 0 })
}

// A large snapshot comes in arrays of at most 500 hosts, in order.
func TestBatchedSnapshotIsSplit(t *testing.T) {
	var hosts []ws.Host
	for i := 0; i < 1201; i++ {
		hosts = append(hosts, ws.Host{Name: fmt.Sprintf("h%04d", i), State: "UP"})
	}
	h, url := newHub(t, ws.Options{
		Authenticate: anyRoot,
		Snapshot:     func() []ws.Host { return hosts },
	})
	c := dialBatched(t, h, url, "root")
	next := 0
	for _, want := range []int{500, 500, 201} {
		fs := readBatch(t, c)
		if len(fs) != want {
			t.Fatalf("snapshot frame of %d hosts, want %d", len(fs), want)
		}
		for _, f := range fs {
			if l := label(t, f); l != fmt.Sprintf("host h%04d", next) {
				t.Fatalf("snapshot host %d: %s", next, l)
			}
			next++
		}
	}
}

// anyRoot authenticates every upgrade as an administrator.
func anyRoot(*http.Request) (access.Principal, bool) {
	return access.Principal{User: "root", Admin: true}, true
}
