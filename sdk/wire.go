package sdk

import (
	"errors"
	"time"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Conversions between the SDK's Go types and the wire messages.

func schemaToPB(s Schema) *notifierpb.SchemaResponse {
	out := &notifierpb.SchemaResponse{Type: s.Type, Label: s.Label}
	for _, f := range s.Fields {
		out.Fields = append(out.Fields, &notifierpb.Field{
			Key: f.Key, Label: f.Label, Type: f.Type, Required: f.Required, Default: f.Default, Help: f.Help,
		})
	}
	return out
}

func schemaFromPB(p *notifierpb.SchemaResponse) Schema {
	s := Schema{Type: p.GetType(), Label: p.GetLabel(), Fields: make([]Field, 0, len(p.GetFields()))}
	for _, f := range p.GetFields() {
		s.Fields = append(s.Fields, Field{
			Key: f.GetKey(), Label: f.GetLabel(), Type: f.GetType(), Required: f.GetRequired(),
			Default: f.GetDefault(), Help: f.GetHelp(),
		})
	}
	return s
}

func eventToPB(e Event) *notifierpb.Event {
	return &notifierpb.Event{
		Id: e.ID, Channel: e.Channel, Host: e.Host, MetricPath: e.MetricPath,
		Level: string(e.Level), PreviousLevel: string(e.PreviousLevel), Value: e.Value,
		Since: timeToPB(e.Since), Time: timeToPB(e.Time), Message: e.Message,
		Test: e.Test, NotificationCount: int64(e.NotificationCount), Url: e.URL,
		Text: e.Text, EpisodeStart: timeToPB(e.EpisodeStart),
	}
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

func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
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

func errorFromPB(p *notifierpb.Error) error {
	if p == nil {
		return nil
	}
	msg := p.GetMessage()
	if msg == "" {
		msg = "notifier plugin reported an error without a message"
	}
	return &RemoteError{Message: msg, Field: p.GetField(), Reason: p.GetReason(), permanent: p.GetPermanent()}
}
