// Package sdk is what a notifier plugin for hbd is written against.
//
// A plugin author implements [Notifier] and calls [Serve] from main:
//
//	func main() { sdk.Serve(mynotifier.New()) }
//
// Serve speaks the daemon's plugin protocol (hashicorp/go-plugin over
// gRPC); nothing of that protocol is part of this package's API, so a
// go-plugin release cannot break a notifier's build. The daemon's side of
// the protocol is package sdk/host, the in-process test harness and the
// conformance checks are package sdk/sdktest.
//
// Every call hands the notifier the channel's configuration as [Settings]:
// the SDK has applied the schema defaults and the schema check first
// ([NewSettings]), so a notifier reads typed values ([Settings.String],
// [Settings.Int], [Settings.Bool], [Settings.List]) and checks only what
// the schema cannot say (URL shapes, ranges, allowed values).
//
// Lifecycle: the daemon calls Schema once after starting the plugin process,
// Validate when a channel is created or changed, and Notify for every
// delivery attempt. The full channel configuration is passed on every call:
// a plugin keeps no state between calls and may be restarted at any time.
// Calls may arrive concurrently, so implementations must be safe for
// concurrent use.
//
// Events ([Event]) say why they were sent ([Kind]: firing, renotify,
// resolved, acknowledged, flapping, test), what happened in words (Text),
// the value with its threshold and comparison, since when, the host's
// owner and a link to the host's page (URL, when the daemon's public_url
// is set). Event.ID is opaque and may hold "/", spaces and non-ASCII
// characters: put [SafeID](ev.ID) into URLs, never the ID itself.
//
// Time limits: the daemon gives Notify 30 s, Validate 10 s and Schema 30 s
// and passes the deadline in ctx; a call still running then is cancelled
// and counts as a retryable failure. Bound everything by ctx (build
// requests with http.NewRequestWithContext), and derive shorter per-channel
// limits from it with context.WithTimeout rather than from the timeout of
// [HTTPClient], which is one per notifier.
//
// Messages: [Render] returns the title and body of an event, applying the
// channel's optional operator-written templates when the notifier's schema
// includes [TemplateFields] (Go text/template over [TemplateData], with the
// functions listed in docs/NOTIFICATIONS.md) and otherwise [RenderTitle]
// and [RenderBody]. Templates are checked when a channel is saved
// ([CheckTemplates], run by the SDK before Validate) and fall back to the
// default rendering if they fail at delivery. [Color], [Emoji],
// [FormatValue], [FormatDuration], [Truncate] and [EscapeMarkdown] help
// notifiers that build their own payloads.
//
// HTTP: [PostJSON], [SendJSON], [PostForm] and [Send] make one call to a
// service through an [HTTPClient] and turn the answer into nil or an error
// marked for the daemon; [Header], [Headers], [DecodeAnswer], [QuoteJSON]
// and [RetryAfterJSON] adjust them. [SampleEvent] is a realistic event of every
// kind for tests and previews.
//
// Field types: besides text, secret, number and bool, a schema may declare
// [FieldChoice] fields (one of the field's Options, shown as a drop-down
// list) and [FieldMultiline] fields (text over several lines, shown as a
// text area); [Schema.Check] and [Schema.Validate] check both.
//
// Errors returned by Notify are retried by the daemon with backoff unless
// they are marked with [Permanent]. An error marked with [RetryAfter] asks
// the daemon to wait at least as long as the service said before the next
// attempt (bounded by the daemon's maximum retry delay); [HTTPError],
// [DoHTTP] and [Send] mark 429 and 503 answers with a Retry-After header
// (or, with [RetryAfterJSON], a wait in the body) this way, and
// [ParseRetryAfter] reads the header for notifiers that parse answers
// themselves. [RetryAfterOf] reads the wait back.
//
// Protocol versions: plugins built against this SDK speak notifier
// protocol 2 with a daemon that knows it and protocol 1 with an older one;
// the daemon speaks protocol 1 to plugins built against an older SDK, which
// do not see the fields added since (Kind, Threshold, Comparison, Owner)
// and cannot ask for a retry delay. Error messages and log lines must never
// contain secret field values; the SDK removes the values of "secret" fields
// from errors and plugin logs as a second line of defence, and
// sdk/sdktest.Conformance checks the notifier itself. Redaction ([Redact])
// covers the raw, JSON-, URL- and base64-encoded forms of a secret and
// tokens that decode to text holding it; secrets shorter than
// [ShortSecretLen] bytes are removed only where they stand as whole tokens.
//
// Where a channel may connect is the daemon's decision: with every Notify
// call it sends the channel's destination policy under the reserved key
// [DestinationsKey], which the SDK takes out of the [Config] and enforces
// on every connection made through [HTTPClient] (redirects included) or
// [Dialer], after name resolution. A plugin that opens connections any
// other way (its own http.Client or net.Dialer, a library dialing by
// itself) is not covered: channels of users who are not admins could then
// reach internal addresses through it.
//
// A failed call also carries a generic reason ([Reason]: "HTTP 400 from
// the receiver", "connection failed", "destination refused by policy"),
// which is all the daemon shows to users who are not admins; the message
// itself goes to the daemon log. Use [WithReason] where the SDK cannot
// infer one.
package sdk
