// Package channelrecord holds the stored form of a notification channel.
// It is a leaf package so that storage backends implement
// channels.Repository without importing the registry (and, through it,
// the plugin machinery of the sdk).
package channelrecord

import (
	"time"

	"github.com/hbdmon/hbd/core/access"
)

// Where a channel is defined.
const (
	SourceConfig = "config" // hbd.yaml: read-only through the API
	SourceUser   = "user"   // created through the API, stored by the Repository
)

// Channel is a notification channel from either source. Fields holds the
// type's settings, secrets included, exactly as the plugin receives them:
// they never leave the registry and the dispatcher except towards the
// plugin (and the Repository).
type Channel struct {
	Name     string
	Type     string
	Owner    string // empty for config channels without owner and channels created in open mode
	Private  bool
	MinLevel string
	Hosts    []string
	Fields   map[string]string
	Source   string
	// Created and Updated are set for user channels only.
	Created time.Time
	Updated time.Time
}

// Access returns what the access policy needs to know of c.
func (c Channel) Access() access.Channel { return access.Channel{Owner: c.Owner, Private: c.Private} }
