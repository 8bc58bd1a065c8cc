package sdk

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
)

// The event the daemon encodes (sdk/host tests that side) reaches the
// notifier whole, Text and EpisodeStart included.
func TestEventFromWire(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	want := Event{ID: "e1", Channel: "ops", Host: "web02", MetricPath: "heartbeat.host", Level: LevelCritical,
		PreviousLevel: LevelOK, Value: 2, Since: now.Add(-time.Minute), Time: now, Message: "m", NotificationCount: 2,
		URL: "https://hbd.example/alerts", Text: "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)",
		EpisodeStart: now.Add(-2 * time.Minute)}
	b, err := proto.Marshal(&notifierpb.Event{Id: "e1", Channel: "ops", Host: "web02", MetricPath: "heartbeat.host",
		Level: "CRITICAL", PreviousLevel: "OK", Value: 2, Since: timestamppb.New(want.Since), Time: timestamppb.New(now),
		Message: "m", NotificationCount: 2, Url: want.URL, Text: want.Text, EpisodeStart: timestamppb.New(want.EpisodeStart)})
	if err != nil {
		t.Fatal(err)
	}
	var p notifierpb.Event
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	out := eventFromPB(&p)
	if out.Text != want.Text || !out.EpisodeStart.Equal(want.EpisodeStart) || !out.Since.Equal(want.Since) ||
		!out.Time.Equal(want.Time) || out.ID != want.ID || out.URL != want.URL || out.NotificationCount != 2 ||
		out.Level != want.Level || out.PreviousLevel != want.PreviousLevel || out.Host != want.Host {
		t.Errorf("from the wire = %+v, want %+v", out, want)
	}
	// An old daemon sends neither: both stay zero.
	if old := eventFromPB(&notifierpb.Event{Id: "x"}); old.Text != "" || !old.EpisodeStart.IsZero() {
		t.Errorf("event without the new fields = %+v", old)
	}
}
