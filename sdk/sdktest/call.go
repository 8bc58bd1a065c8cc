package sdktest

import (
	"context"

	"github.com/hbdmon/hbd/sdk"
)

// Validate calls n.Validate in-process with cfg as the SDK hands it over
// for a daemon's call: with the schema defaults applied and the schema
// check passed ([sdk.NewSettings]) and the message templates checked
// ([sdk.CheckTemplates]). A configuration that fails the check
// returns the check's [*sdk.FieldError] without calling n, as over the
// wire. Errors come back unencoded, so errors.Is and errors.As see the
// notifier's own values.
func Validate(n sdk.Notifier, cfg sdk.Config) error {
	set, err := sdk.NewSettings(n.Schema(), cfg)
	if err != nil {
		return err
	}
	if err := sdk.CheckTemplates(n.Schema(), set); err != nil {
		return err
	}
	return n.Validate(set)
}

// Notify calls n.Notify in-process like [Validate] calls n.Validate; a
// configuration that fails the schema check is a permanent error, as over
// the wire. The destination policy, if any, comes from ctx
// ([sdk.WithDestinations]).
func Notify(ctx context.Context, n sdk.Notifier, cfg sdk.Config, ev sdk.Event) error {
	set, err := sdk.NewSettings(n.Schema(), cfg)
	if err != nil {
		return sdk.Permanent(err)
	}
	return n.Notify(ctx, set, ev)
}
