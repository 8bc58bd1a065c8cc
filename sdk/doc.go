// Package sdk is what a notifier plugin for hbd is written against, and what
// the hbd daemon uses to talk to such a plugin.
//
// A plugin author implements [Notifier] and calls [Serve] from main:
//
//	func main() { sdk.Serve(mynotifier.New()) }
//
// The daemon launches each hbd-notifier-* binary with [ClientConfig], obtains
// a [*Client] with [Dispense], and calls Schema, Validate and Notify on it.
// Between the two runs hashicorp/go-plugin over gRPC; the wire messages are an
// internal detail of this module (see proto/notifier.proto).
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
// sdk/sdktest.Conformance checks the notifier itself.
package sdk
