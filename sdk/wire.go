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
		pf := &notifierpb.Field{
			Key: f.Key, Label: f.Label, Type: f.Type, Required: f.Required, Default: f.Default, Help: f.Help,
		}
		for _, o := range f.Options {
			pf.Options = append(pf.Options, &notifierpb.Option{Value: o.Value, Label: o.Label})
		}
		out.Fields = append(out.Fields, pf)
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
		Kind: Kind(p.GetKind()), Threshold: p.GetThreshold(), Comparison: p.GetComparison(), Owner: p.GetOwner(),
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
	if d, ok := RetryAfterOf(err); ok && !out.Permanent {
		out.RetryAfterMs = d.Milliseconds()
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		out.Field = fe.Key
	}
	return out
}
