package sdk

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/status"

	"github.com/hbdmon/hbd/sdk/internal/notifierpb"
)

// grpcServer adapts a Notifier to the generated gRPC service. It takes the
// destination policy out of the configuration, applies the schema defaults
// and check ([NewSettings]) before the notifier sees a call, hands the call
// a logger, keeps secrets out of errors and logs, and turns a panic into a
// retryable error instead of a dead plugin.
type grpcServer struct {
	notifierpb.UnimplementedNotifierServer

	impl   Notifier
	schema Schema
	log    hclog.Logger
	red    *redactor
}

func newGRPCServer(impl Notifier, log hclog.Logger, red *redactor) *grpcServer {
	return &grpcServer{impl: impl, schema: impl.Schema(), log: log, red: red}
}

func (s *grpcServer) Schema(context.Context, *notifierpb.SchemaRequest) (*notifierpb.SchemaResponse, error) {
	return schemaToPB(s.schema), nil
}

func (s *grpcServer) Validate(ctx context.Context, req *notifierpb.ValidateRequest) (*notifierpb.ValidateResponse, error) {
	cfg := Config(req.GetConfig())
	// Validate connects nowhere: the policy is only taken out of cfg.
	_, dstErr := takeDestinations(cfg)
	cfg = cfg.WithDefaults(s.schema)
	err := s.call(ctx, "validate", cfg, func(ctx context.Context) error {
		if dstErr != nil {
			return dstErr
		}
		set, err := newSettings(s.schema, cfg)
		if err != nil {
			return err
		}
		if err := CheckTemplates(s.schema, set); err != nil {
			return err
		}
		return s.impl.Validate(set)
	})
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, status.FromContextError(ctxErr).Err()
	}
	return &notifierpb.ValidateResponse{Error: err}, nil
}

func (s *grpcServer) Notify(ctx context.Context, req *notifierpb.NotifyRequest) (*notifierpb.NotifyResponse, error) {
	cfg := Config(req.GetConfig())
	dst, dstErr := takeDestinations(cfg)
	cfg = cfg.WithDefaults(s.schema)
	ev := eventFromPB(req.GetEvent())
	err := s.call(ctx, "notify", cfg, func(ctx context.Context) error {
		if dstErr != nil {
			return Permanent(dstErr)
		}
		set, err := newSettings(s.schema, cfg)
		if err != nil {
			return Permanent(err)
		}
		ctx = WithDestinations(ctx, dst)
		return s.impl.Notify(WithLogger(ctx, s.log.With("event_id", ev.ID)), set, ev)
	})
	// The call's deadline passed (or the daemon cancelled it) while the
	// notifier ran: whatever it returned, answer with the context's status,
	// which the daemon's client turns into a retryable ctx error. The
	// server's deadline is reached a little before the client's, so the
	// answer may arrive while the client's ctx is still live.
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, status.FromContextError(ctxErr).Err()
	}
	return &notifierpb.NotifyResponse{Error: err}, nil
}

// call runs fn with cfg's secrets registered for log redaction and returns
// its error encoded for the wire.
func (s *grpcServer) call(ctx context.Context, name string, cfg Config, fn func(context.Context) error) (pbErr *notifierpb.Error) {
	secrets := s.schema.secretValues(cfg)
	release := s.red.track(secrets)
	defer release()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("notifier panicked", "call", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			pbErr = errorToPB(fmt.Errorf("notifier panicked during %s: %v", name, r), secrets)
		}
	}()
	return errorToPB(fn(ctx), secrets)
}
