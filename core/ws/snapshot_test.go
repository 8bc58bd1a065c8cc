package ws_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/ws"
)

// fleetState is a snapshot source whose hosts a test changes; it counts
// the snapshots taken.
type fleetState struct {
	mu     sync.Mutex
	hosts  []ws.Host
	taken  int
	before func() // called at the start of each snapshot, when set
}

func (f *fleetState) snapshot() []ws.Host {
	if f.before != nil {
		f.before()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.taken++
	return append([]ws.Host(nil), f.hosts...)
}

func (f *fleetState) set(name, state string) ws.Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.hosts {
		if f.hosts[i].Name == name {
			f.hosts[i].State = state
			return f.hosts[i]
		}
	}
	panic(name)
}

func (f *fleetState) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken
}

// snapshotSeen reads a client's frames up to the "message" frame the test
// publishes after connecting it and returns the host states before it, as
// "name STATE".
func snapshotSeen(t *testing.T, c *websocket.Conn, batched bool) []string {
	t.Helper()
	var seen []string
	for {
		var fs []frame
		if batched {
			fs = readBatch(t, c)
		} else {
			fs = []frame{mustRead(t, c)}
		}
		for _, f := range fs {
			if f.Type == ws.TypeMessage {
				return seen
			}
			d := dataOf(t, f)
			seen = append(seen, d["name"].(string)+" "+d["state"].(string))
		}
	}
}

func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Clients connecting one after another while no host state changes share
// one snapshot (one Snapshot call, counted as shared), and each still gets
// exactly the hosts it may see, plain or batched. A published state makes
// the next client take a new snapshot, which carries it.
func TestClientsConnectingTogetherShareOneSnapshot(t *testing.T) {
	fleet := &fleetState{hosts: []ws.Host{
		{Name: "hostA", State: "UP"}, {Name: "hostB", State: "UP"}, {Name: "hostC", State: "UP"},
	}}
	h, url := newHub(t, ws.Options{Snapshot: fleet.snapshot, SnapshotMaxAge: time.Hour})
	connect := func(user string, batched bool) []string {
		t.Helper()
		u := url
		if batched {
			u += "?batch=1"
		}
		c := mustDial(t, h, u, user)
		h.PublishMessage("hostA", map[string]any{"i": 0}) // the end of the snapshot
		return snapshotSeen(t, c, batched)
	}
	steps := []struct {
		user    string
		batched bool
		want    []string
	}{
		{"alice", false, []string{"hostA UP"}},
		{"bob", true, []string{"hostA UP", "hostB UP"}},
		{"root", true, []string{"hostA UP", "hostB UP", "hostC UP"}},
		{"root", false, []string{"hostA UP", "hostB UP", "hostC UP"}},
		{"alice", true, []string{"hostA UP"}},
		{"bob", false, []string{"hostA UP", "hostB UP"}},
	}
	for i, s := range steps {
		if got := connect(s.user, s.batched); !sameList(got, s.want) {
			t.Fatalf("step %d, %s (batched %v): snapshot %v, want %v", i, s.user, s.batched, got, s.want)
		}
	}
	if n := fleet.count(); n != 1 {
		t.Fatalf("%d snapshots taken for clients connecting together, want 1", n)
	}
	if taken, shared := counter(h, "hbd_ws_snapshots_total", "taken"), counter(h, "hbd_ws_snapshots_total", "shared"); taken != 1 || shared != float64(len(steps)-1) {
		t.Fatalf("hbd_ws_snapshots_total taken %v shared %v, want 1 and %d", taken, shared, len(steps)-1)
	}

	// A change published since: the shared snapshot no longer fits.
	h.PublishHost(fleet.set("hostB", "DOWN"))
	if got, want := connect("bob", true), []string{"hostA UP", "hostB DOWN"}; !sameList(got, want) {
		t.Fatalf("after a change: snapshot %v, want %v", got, want)
	}
	if got, want := connect("root", false), []string{"hostA UP", "hostB DOWN", "hostC UP"}; !sameList(got, want) {
		t.Fatalf("after a change, shared: snapshot %v, want %v", got, want)
	}
	if n := fleet.count(); n != 2 {
		t.Fatalf("%d snapshots taken, want 2", n)
	}
	if shared := counter(h, "hbd_ws_snapshots_total", "shared"); shared != float64(len(steps)) {
		t.Fatalf("shared %v, want %d", shared, len(steps))
	}
}

// A snapshot older than SnapshotMaxAge is not shared: its last_seen times
// would be stale.
func TestOldSnapshotIsNotShared(t *testing.T) {
	fleet := &fleetState{hosts: []ws.Host{{Name: "hostA", State: "UP"}}}
	h, url := newHub(t, ws.Options{Snapshot: fleet.snapshot, SnapshotMaxAge: time.Nanosecond})
	for i := 0; i < 3; i++ {
		c := mustDial(t, h, url, "alice")
		h.PublishMessage("hostA", map[string]any{"i": 0})
		if got := snapshotSeen(t, c, false); !sameList(got, []string{"hostA UP"}) {
			t.Fatalf("snapshot %v", got)
		}
	}
	if n := fleet.count(); n != 3 {
		t.Fatalf("%d snapshots taken, want 3", n)
	}
	if shared := counter(h, "hbd_ws_snapshots_total", "shared"); shared != 0 {
		t.Fatalf("shared %v, want 0", shared)
	}
}

// anyAdmin authenticates every upgrade as the administrator named in
// X-Test-User.
func anyAdmin(r *http.Request) (access.Principal, bool) {
	return access.Principal{User: r.Header.Get("X-Test-User"), Admin: true}, true
}

// The snapshot is taken outside the hub's lock: while it is being taken,
// connected clients keep receiving, /metrics answers and another client
// connects; that client waits for the snapshot under way and shares it.
// Before, the snapshot was taken under the hub's write lock and every
// publish and upgrade queued behind it.
func TestSnapshotIsTakenOutsideTheHubLock(t *testing.T) {
	fleet := &fleetState{hosts: []ws.Host{{Name: "hostA", State: "UP"}, {Name: "hostB", State: "UP"}}}
	h, url := newHub(t, ws.Options{Snapshot: fleet.snapshot, SnapshotMaxAge: time.Hour, Authenticate: anyAdmin})
	// A client that wants no host states takes no snapshot.
	watcher := mustDial(t, h, url+"?types=message", "watcher")

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fleet.before = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	first := mustDial(t, h, url+"?batch=1", "first")
	<-entered // the first client's snapshot is being taken, and waits

	h.PublishMessage("", map[string]any{"i": 1})
	if f := mustRead(t, watcher); f.Type != ws.TypeMessage {
		t.Fatalf("watcher got %s", f.Type)
	}
	if v := counter(h, "hbd_ws_clients"); v != 2 {
		t.Fatalf("hbd_ws_clients = %v, want 2", v)
	}
	second := mustDial(t, h, url, "second") // registers at the same host version
	close(release)

	h.PublishMessage("", map[string]any{"i": 2})
	want := []string{"hostA UP", "hostB UP"}
	if got := snapshotSeen(t, first, true); !sameList(got, want) {
		t.Fatalf("first: %v", got)
	}
	if got := snapshotSeen(t, second, false); !sameList(got, want) {
		t.Fatalf("second: %v", got)
	}
	if n := fleet.count(); n != 1 {
		t.Fatalf("%d snapshots taken, want 1", n)
	}
	if shared := counter(h, "hbd_ws_snapshots_total", "shared"); shared != 1 {
		t.Fatalf("shared %v, want 1", shared)
	}
}
