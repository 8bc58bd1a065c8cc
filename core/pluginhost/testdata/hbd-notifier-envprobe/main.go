// Command hbd-notifier-envprobe is a test plugin that reports, through
// Notify's error, which environment variables of the daemon it can see.
package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/hbdmon/hbd/sdk"
)

type probe struct{}

func (probe) Schema() sdk.Schema {
	return sdk.Schema{Type: "envprobe", Label: "Environment probe", Fields: []sdk.Field{}}
}

func (probe) Validate(sdk.Settings) error { return nil }

// Notify fails permanently naming every HBD_PROBE_* variable it inherited,
// and fails if PATH (which the host passes on) is missing.
func (probe) Notify(context.Context, sdk.Settings, sdk.Event) error {
	var leaked []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HBD_PROBE_") {
			leaked = append(leaked, kv)
		}
	}
	if len(leaked) > 0 {
		return sdk.Permanent(errors.New("inherited: " + strings.Join(leaked, " ")))
	}
	if os.Getenv("PATH") == "" {
		return sdk.Permanent(errors.New("PATH missing"))
	}
	return nil
}

func main() { sdk.Serve(probe{}) }
