package host

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
)

// The event leaves the daemon whole, Text and EpisodeStart included (the
// sdk package tests the plugin's side of the same message).
func TestEventToWire(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	in := sdk.Event{ID: "e1", Channel: "ops", Host: "web02", MetricPath: "heartbeat.host", Level: sdk.LevelCritical,
		PreviousLevel: sdk.LevelOK, Value: 2, Since: now.Add(-time.Minute), Time: now, Message: "m", NotificationCount: 2,
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
	if p.GetText() != in.Text || !p.GetEpisodeStart().AsTime().Equal(in.EpisodeStart) || !p.GetSince().AsTime().Equal(in.Since) ||
		!p.GetTime().AsTime().Equal(in.Time) || p.GetId() != in.ID || p.GetUrl() != in.URL || p.GetNotificationCount() != 2 ||
		p.GetLevel() != string(in.Level) || p.GetPreviousLevel() != string(in.PreviousLevel) || p.GetHost() != in.Host {
		t.Errorf("on the wire = %v, want %+v", &p, in)
	}
	// Zero times are left out, so the plugin reads them as zero.
	if p := eventToPB(sdk.Event{ID: "x"}); p.GetSince() != nil || p.GetEpisodeStart() != nil {
		t.Errorf("zero times encoded as %v", p)
	}
}
