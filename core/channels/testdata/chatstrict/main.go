// Command chatstrict is the stricter version of the test notifier chat:
// a room must be an id starting with "!".
package main

import (
	"context"
	"errors"
	"strings"

	"github.com/hbdmon/hbd/sdk"
)

type chat struct{}

func (chat) Schema() sdk.Schema {
	return sdk.Schema{Type: "chat", Label: "Chat", Fields: []sdk.Field{
		{Key: "room", Label: "Room", Type: sdk.FieldText, Required: true},
		{Key: "greeting", Label: "Greeting", Type: sdk.FieldText},
	}}
}

func (chat) Validate(cfg sdk.Settings) error {
	if !strings.HasPrefix(cfg.String("room"), "!") {
		return &sdk.FieldError{Key: "room", Err: errors.New(`must be a room id starting with "!"`)}
	}
	return nil
}

func (c chat) Notify(_ context.Context, cfg sdk.Settings, _ sdk.Event) error {
	return sdk.Permanent(c.Validate(cfg))
}

func main() { sdk.Serve(chat{}) }
