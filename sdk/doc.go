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
// Errors returned by Notify are retried by the daemon with backoff unless
// they are marked with [Permanent]. Error messages and log lines must never
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
