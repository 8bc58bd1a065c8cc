// Command chat is a test notifier of type "chat" that accepts any room;
// chatstrict is its next, stricter version. The registry's tests replace
// one by the other in a running plugin host.
package main

import (
	"context"

	"github.com/hbdmon/hbd/sdk"
)

type chat struct{}

func (chat) Schema() sdk.Schema {
	return sdk.Schema{Type: "chat", Label: "Chat", Fields: []sdk.Field{
		{Key: "room", Label: "Room", Type: sdk.FieldText, Required: true},
		{Key: "greeting", Label: "Greeting", Type: sdk.FieldText},
	}}
}

func (chat) Validate(sdk.Settings) error { return nil }

func (chat) Notify(context.Context, sdk.Settings, sdk.Event) error { return nil }

func main() { sdk.Serve(chat{}) }
