package sdk

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
)

// Conversions between the SDK's Go types and the wire messages, plugin
// side: the daemon's side is in sdk/host.

func schemaToPB(s Schema) *notifierpb.SchemaResponse {
	out := &notifierpb.SchemaResponse{Type: s.Type, Label: s.Label}
	for _, f := range s.Fields {
		out.Fields = append(out.Fields, &notifierpb.Field{
			Key: f.Key, Label: f.Label, Type: f.Type, Required: f.Required, Default: f.Default, Help: f.Help,
		})
	}
	return out
}

func eventFromPB(p *notifierpb.Event) Event {
	return Event{
		ID: p.GetId(), Channel: p.GetChannel(), Host: p.GetHost(), MetricPath: p.GetMetricPath(),
		Level: Level(p.GetLevel()), PreviousLevel: Level(p.GetPreviousLevel()), Value: p.GetValue(),
		Since: timeFromPB(p.GetSince()), Time: timeFromPB(p.GetTime()), Message: p.GetMessage(),
		Test: p.GetTest(), NotificationCount: int(p.GetNotificationCount()), URL: p.GetUrl(),
		Text: p.GetText(), EpisodeStart: timeFromPB(p.GetEpisodeStart()),
	}
}

func timeFromPB(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// errorToPB encodes a Notifier's error for the wire with secrets removed.
func errorToPB(err error, secrets []string) *notifierpb.Error {
	if err == nil {
		return nil
	}
	out := &notifierpb.Error{Message: Redact(err.Error(), secrets), Permanent: IsPermanent(err), Reason: Reason(err)}
	var fe *FieldError
	if errors.As(err, &fe) {
		out.Field = fe.Key
	}
	return out
}
