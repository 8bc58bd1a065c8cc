package sdk

import (
	"testing"
	"time"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
	"google.golang.org/protobuf/proto"
)

// The event survives the wire, Text and EpisodeStart included.
func TestEventWireRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	in := Event{ID: "e1", Channel: "ops", Host: "web02", MetricPath: "heartbeat.host", Level: LevelCritical,
		PreviousLevel: LevelOK, Value: 2, Since: now.Add(-time.Minute), Time: now, Message: "m", NotificationCount: 2,
		URL: "https://hbd.example/alerts", Text: "web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)",
		EpisodeStart: now.Add(-2 * time.Minute)}
	b, err := proto.Marshal(eventToPB(in))
	if err != nil {
		t.Fatal(err)
	}
	var p notifierpb.Event
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	out := eventFromPB(&p)
	if out.Text != in.Text || !out.EpisodeStart.Equal(in.EpisodeStart) || !out.Since.Equal(in.Since) ||
		out.ID != in.ID || out.URL != in.URL || out.NotificationCount != 2 {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	// An old daemon sends neither: both stay zero.
	if old := eventFromPB(&notifierpb.Event{Id: "x"}); old.Text != "" || !old.EpisodeStart.IsZero() {
		t.Errorf("event without the new fields = %+v", old)
	}
}
