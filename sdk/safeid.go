package sdk

import (
	"crypto/sha256"
	"encoding/hex"
)

// SafeID returns a stable, URL-safe stand-in for an event ID (or any other
// string): 32 lower-case hexadecimal characters, the first 128 bits of the
// SHA-256 of id. The same id always gives the same result, in every
// version of the SDK, so a destination that deduplicates by it (a Matrix
// transaction id, a PagerDuty dedup key, an Opsgenie alias) sees retries
// of one event as one. Different ids give different results in practice
// (a collision needs about 2^64 ids). The result needs no escaping in a URL
// path or query, a header, a file name or JSON, and is the same under
// case-folding.
//
// Use it wherever [Event.ID] would go into a URL: the ID itself is opaque
// and holds "/", spaces and non-ASCII characters.
func SafeID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}
