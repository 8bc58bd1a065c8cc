package channels

import (
	"maps"

	"github.com/hbdmon/hbd/sdk"
)

// Where a channel may connect (channel_destinations), and what its
// failures may tell.
//
// The plugin process makes the connections, so the daemon cannot check
// them itself: each Notify call carries the channel's policy under the
// reserved key sdk.DestinationsKey, and the SDK checks every connection
// made through sdk.HTTPClient or sdk.Dialer against it, after name
// resolution (see sdk.Destinations). A channel is restricted when it is a
// user channel whose owner is not an admin now (asked of the access
// policy); open mode has no such users. Restricted channels may not reach loopback, link-local (cloud
// metadata), unspecified, multicast, private, shared and reserved
// addresses unless channel_destinations.allow lists them, nor the
// daemon's own ports on this machine even then; channel_destinations.deny
// applies to every channel.
//
// A failed delivery or test is told to users by its generic reason only
// (sdk.Reason: "HTTP 400 from the receiver", "connection failed",
// "destination refused by policy"): the host journal, which every user
// who sees the host reads, never holds what the remote side answered.
// The plugin's message, secrets removed, goes to the daemon log and to
// admins who test a channel.

// restricted reports whether ch is held to the default refusals: a user
// channel whose owner is not an admin.
func (r *Registry) restricted(ch Channel) bool {
	if ch.Source != SourceUser || ch.Owner == "" {
		return false
	}
	pr, ok := r.opts.Policy.PrincipalOf(ch.Owner)
	return !ok || !r.opts.Policy.IsAdmin(pr)
}

// destinations returns the destination policy of ch under the config in
// force.
func (r *Registry) destinations(ch Channel) sdk.Destinations {
	cfg := r.opts.Config()
	allow, deny := cfg.ChannelDestinations.Prefixes()
	p := sdk.Destinations{Deny: deny}
	if r.restricted(ch) {
		p.Restricted, p.Allow = true, allow
		for _, port := range []int{cfg.HBDPort, cfg.WSPort, cfg.WSSPort, cfg.HBPort} {
			if port > 0 {
				p.OwnPorts = append(p.OwnPorts, port)
			}
		}
	}
	return p
}

// PluginConfig returns the configuration a Notify call of ch sends: its
// fields and, under the reserved key, its destination policy (which
// overwrites whatever the fields hold under that key). The dispatcher and
// TestChannel send nothing else.
func (r *Registry) PluginConfig(ch Channel) sdk.Config {
	out := make(sdk.Config, len(ch.Fields)+1)
	maps.Copy(out, ch.Fields)
	out[sdk.DestinationsKey] = r.destinations(ch).Encode()
	return out
}

// PublicReason is what a failed plugin call may tell any user who sees
// the channel: its generic reason, never the plugin's message.
func PublicReason(err error) string {
	r := sdk.Reason(err)
	if !sdk.ValidReason(r) {
		return sdk.ReasonFailed
	}
	return r
}
