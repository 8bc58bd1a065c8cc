package protocol

import (
	"unicode/utf8"

	"github.com/hbdmon/hbd/core/safetext"
)

// The agent's own health travels in its sample batches (see
// docs/PROTOCOL.md, "Agent self-health"):
//
//   - the numbers as an ordinary sample of the reserved plugin AgentPlugin
//     ("hbc"), which every daemon accepts, stores and evaluates like any
//     plugin's sample, so thresholds such as "hbc.oldest_unsent_seconds"
//     alert on a growing spool;
//   - the last plugin error's text, which is not a number, in the optional
//     top-level "agent" object, sent only to a daemon whose 200 answer said
//     "agent_health": true (older daemons refuse unknown fields).
const (
	// AgentPlugin is the plugin name of the agent's health sample.
	AgentPlugin = "hbc"

	// Data keys of the health sample.
	AgentSpoolBytes     = "spool_bytes"           // bytes waiting in the spool
	AgentSpoolBatches   = "spool_batches"         // batches needed to send them (estimate)
	AgentOldestUnsent   = "oldest_unsent_seconds" // age of the oldest waiting sample; 0 when none
	AgentLastSend       = "last_send"             // unix time of the last batch the daemon took; 0 before the first
	AgentPluginErrors   = "plugin_errors"         // failed plugin runs since the agent started
	AgentSpoolDropped   = "spool_dropped"         // unsent samples dropped because the spool was full, since start
	MaxAgentErrorLength = 256                     // bytes of LastPluginError kept
)

// AgentUnits are the units of the health sample's data keys.
var AgentUnits = map[string]string{
	AgentSpoolBytes:   UnitBytes,
	AgentSpoolBatches: UnitCount,
	AgentOldestUnsent: UnitSeconds,
	AgentLastSend:     UnitUnixTime,
	// Counters since the agent started, but small numbers an operator
	// reads as totals: declared as counts, so they show as such.
	AgentPluginErrors: UnitCount,
	AgentSpoolDropped: UnitCount,
}

// AgentInfo is the optional "agent" object of a batch: what the health
// sample cannot carry because it is not a number.
type AgentInfo struct {
	// LastPluginError is the newest plugin failure, "plugin: error",
	// at most MaxAgentErrorLength bytes; "" when none since start.
	LastPluginError string `json:"last_plugin_error"`
}

// ClipAgentError makes a plugin error text fit AgentInfo: unsafe
// characters replaced (safetext.Clean), cut at MaxAgentErrorLength bytes
// on a character boundary.
func ClipAgentError(s string) string {
	s = safetext.Clean(s)
	if len(s) <= MaxAgentErrorLength {
		return s
	}
	cut := MaxAgentErrorLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
