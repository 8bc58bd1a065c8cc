package config

// Secret is a secret value of a daemon or agent config (a host key, the
// enroll key, the metrics token): fmt verbs, logs, %#v and JSON show
// "REDACTED". Reveal (or Bytes) is the one way to read the value, so every
// use of a secret can be found with grep.
type Secret string

// Redacted is what a Secret prints as.
const Redacted = "REDACTED"

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return `"` + Redacted + `"` }

// MarshalText keeps the secret out of JSON, YAML and log encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Bytes returns the secret's value as bytes.
func (s Secret) Bytes() []byte { return []byte(s) }
