package sdk

import "context"

// Notifier delivers hbd alert events to one kind of destination. It is the
// only thing a plugin author implements; [Serve] does the rest.
//
// The daemon calls Schema once per plugin process start, Validate whenever a
// channel of this type is created or changed, and Notify for each delivery
// attempt (retries included). Every call receives the full channel
// configuration as [Settings]: the SDK has applied the schema defaults and
// the schema check ([NewSettings]) first, and answers a call whose
// configuration fails the check itself, without calling the notifier. Keep
// no per-channel state. Calls can run concurrently.
type Notifier interface {
	// Schema describes the channel type. It must return the same value
	// every time and pass [Schema.Check].
	Schema() Schema
	// Validate reports whether cfg is usable, without contacting anyone,
	// checking what the schema cannot express. Return a [*FieldError]
	// naming the key at fault. The message must not contain secret values.
	Validate(cfg Settings) error
	// Notify delivers ev. It must give up when ctx is done. Return an error
	// wrapped with [Permanent] when retrying cannot help (for example
	// rejected credentials); other errors are retried with backoff. The
	// message must not contain secret values. Log through [Logger](ctx).
	Notify(ctx context.Context, cfg Settings, ev Event) error
}
