package sdk

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Field types understood by the daemon and its web UI.
const (
	// FieldText is free text shown in clear.
	FieldText = "text"
	// FieldSecret is text that is masked in the API and UI and redacted
	// from plugin errors and logs.
	FieldSecret = "secret"
	// FieldNumber is a decimal number, passed as its string form.
	FieldNumber = "number"
	// FieldBool is "true" or "false" (anything strconv.ParseBool accepts).
	FieldBool = "bool"
	// FieldChoice is one of the values listed in the field's Options,
	// shown as a drop-down list.
	FieldChoice = "choice"
	// FieldMultiline is free text that may span lines (a message
	// template, a list of recipients one per line), shown as a text area.
	FieldMultiline = "multiline"
)

// Bounds a schema must respect ([Schema.Check]).
const (
	// MaxOptions is the most options a choice field may list.
	MaxOptions = 100
	// MaxMultilineLen is the longest value, in bytes, a multiline field
	// accepts ([Schema.Validate]).
	MaxMultilineLen = 16 << 10
)

// Option is one allowed value of a [FieldChoice] field.
type Option struct {
	// Value is what the configuration holds, e.g. "high". It must not be
	// empty and must be unique within the field.
	Value string `json:"value"`
	// Label is the text shown in the drop-down list, e.g. "High
	// priority"; the UI shows Value when it is empty.
	Label string `json:"label,omitempty"`
}

// Field describes one configuration key of a notification channel type.
type Field struct {
	// Key is the configuration key, e.g. "token". It must match
	// ^[a-z][a-z0-9_]*$ and must not be one of the keys the daemon keeps for
	// itself (see [ReservedKeys]).
	Key string `json:"key"`
	// Label is the human-readable name shown in forms.
	Label string `json:"label"`
	// Type is one of FieldText, FieldSecret, FieldNumber, FieldBool,
	// FieldChoice or FieldMultiline.
	Type string `json:"type"`
	// Required fields must have a non-empty value (or a Default).
	Required bool `json:"required"`
	// Default is used when the channel configuration leaves the key empty.
	Default string `json:"default,omitempty"`
	// Help is a one-line explanation shown next to the form input.
	Help string `json:"help,omitempty"`
	// Options lists the allowed values of a FieldChoice field, in display
	// order (at least one, at most [MaxOptions]); other types have none.
	// An optional choice field may also be left empty.
	Options []Option `json:"options,omitempty"`
}

// Schema describes a notification channel type: its type name, its label and
// its configuration fields. A notifier must return the same Schema every time.
type Schema struct {
	// Type is the channel type name used in configuration, e.g. "pushover".
	// It must match ^[a-z][a-z0-9_-]*$.
	Type string `json:"type"`
	// Label is the human-readable name, e.g. "Pushover".
	Label string `json:"label"`
	// Fields lists the configuration keys in display order.
	Fields []Field `json:"fields"`
}

// ReservedKeys are channel settings owned by the daemon; they sit next to the
// type fields in the API and in hbd.yaml, so no field may use them as a key.
// [DestinationsKey] is the one the daemon adds to the Config of each call;
// users cannot set it.
var ReservedKeys = []string{"name", "type", "type_label", "owner", "private", "min_level", "hosts", "fields", DestinationsKey}

var (
	typeNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	fieldKeyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Errors reported by [Schema.Validate], each wrapped in a [*FieldError].
var (
	// ErrRequired means a required field is missing or empty.
	ErrRequired = errors.New("is required")
	// ErrNotNumber means a number field does not hold a number.
	ErrNotNumber = errors.New("must be a number")
	// ErrNotBool means a bool field does not hold true or false.
	ErrNotBool = errors.New("must be true or false")
	// ErrNotOption means a choice field holds a value its Options do not
	// list.
	ErrNotOption = errors.New("must be one of the listed options")
	// ErrTooLong means a multiline field holds more than
	// [MaxMultilineLen] bytes.
	ErrTooLong = fmt.Errorf("must be at most %d bytes", MaxMultilineLen)
)

// FieldError reports a configuration problem with one field. Validate
// implementations should return one so the daemon can point at the field.
type FieldError struct {
	// Key is the configuration key at fault.
	Key string
	// Err says what is wrong. It must not contain the field's value when the
	// field is a secret.
	Err error
}

// Error returns "<key>: <problem>".
func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying problem, so errors.Is(err, ErrRequired) works.
func (e *FieldError) Unwrap() error { return e.Err }

// Check reports whether the schema itself is well formed: a valid type name
// and label, field keys that match the key pattern, are unique and not
// reserved, known field types, and defaults that parse for their type. The
// daemon refuses plugins whose schema fails Check.
func (s Schema) Check() error {
	var errs []error
	if !typeNamePattern.MatchString(s.Type) {
		errs = append(errs, fmt.Errorf("type %q does not match %s", s.Type, typeNamePattern))
	}
	if strings.TrimSpace(s.Label) == "" {
		errs = append(errs, errors.New("label is empty"))
	}
	seen := make(map[string]bool, len(s.Fields))
	for i, f := range s.Fields {
		switch {
		case !fieldKeyPattern.MatchString(f.Key):
			errs = append(errs, fmt.Errorf("field %d: key %q does not match %s", i, f.Key, fieldKeyPattern))
		case seen[f.Key]:
			errs = append(errs, fmt.Errorf("field %q: duplicate key", f.Key))
		case isReserved(f.Key):
			errs = append(errs, fmt.Errorf("field %q: key is reserved for the daemon", f.Key))
		}
		seen[f.Key] = true
		if strings.TrimSpace(f.Label) == "" {
			errs = append(errs, fmt.Errorf("field %q: label is empty", f.Key))
		}
		if f.Type != FieldChoice && len(f.Options) > 0 {
			errs = append(errs, fmt.Errorf("field %q: options are only for type %q", f.Key, FieldChoice))
		}
		switch f.Type {
		case FieldText, FieldSecret:
		case FieldMultiline:
			if len(f.Default) > MaxMultilineLen {
				errs = append(errs, fmt.Errorf("field %q: default %w", f.Key, ErrTooLong))
			}
		case FieldChoice:
			errs = append(errs, checkOptions(f)...)
		case FieldNumber:
			if f.Default != "" {
				if _, err := strconv.ParseFloat(f.Default, 64); err != nil {
					errs = append(errs, fmt.Errorf("field %q: default %w", f.Key, ErrNotNumber))
				}
			}
		case FieldBool:
			if f.Default != "" {
				if _, err := strconv.ParseBool(f.Default); err != nil {
					errs = append(errs, fmt.Errorf("field %q: default %w", f.Key, ErrNotBool))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("field %q: unknown type %q", f.Key, f.Type))
		}
	}
	return errors.Join(errs...)
}

// checkOptions returns the problems of a choice field's options.
func checkOptions(f Field) []error {
	var errs []error
	switch {
	case len(f.Options) == 0:
		errs = append(errs, fmt.Errorf("field %q: a choice field needs options", f.Key))
	case len(f.Options) > MaxOptions:
		errs = append(errs, fmt.Errorf("field %q: more than %d options", f.Key, MaxOptions))
	}
	seen := make(map[string]bool, len(f.Options))
	for i, o := range f.Options {
		switch {
		case strings.TrimSpace(o.Value) == "" || o.Value != strings.TrimSpace(o.Value):
			errs = append(errs, fmt.Errorf("field %q: option %d: value is empty or has surrounding white space", f.Key, i))
		case seen[o.Value]:
			errs = append(errs, fmt.Errorf("field %q: duplicate option %q", f.Key, o.Value))
		}
		seen[o.Value] = true
	}
	if f.Default != "" && !hasOption(f, f.Default) {
		errs = append(errs, fmt.Errorf("field %q: default %w", f.Key, ErrNotOption))
	}
	return errs
}

// hasOption reports whether v is one of f's option values.
func hasOption(f Field, v string) bool {
	for _, o := range f.Options {
		if o.Value == v {
			return true
		}
	}
	return false
}

func isReserved(key string) bool {
	for _, r := range ReservedKeys {
		if key == r {
			return true
		}
	}
	return false
}

// Validate checks cfg against the schema's generic rules: required fields are
// present (after defaults), number fields parse as numbers, bool fields as
// booleans, choice fields hold one of their options and multiline fields at
// most [MaxMultilineLen] bytes. It returns the first problem as a [*FieldError], or nil. Keys not
// in the schema are ignored. The SDK runs it (through [NewSettings]) before
// every Validate and Notify call, so a notifier checks only what only it
// knows (URL shapes, allowed values); the daemon runs it too, before asking
// the plugin.
func (s Schema) Validate(cfg Config) error {
	for _, f := range s.Fields {
		v := strings.TrimSpace(cfg[f.Key])
		if v == "" {
			v = f.Default
		}
		if v == "" {
			if f.Required {
				return &FieldError{Key: f.Key, Err: ErrRequired}
			}
			continue
		}
		switch f.Type {
		case FieldNumber:
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return &FieldError{Key: f.Key, Err: ErrNotNumber}
			}
		case FieldBool:
			if _, err := strconv.ParseBool(v); err != nil {
				return &FieldError{Key: f.Key, Err: ErrNotBool}
			}
		case FieldChoice:
			if !hasOption(f, v) {
				return &FieldError{Key: f.Key, Err: ErrNotOption}
			}
		case FieldMultiline:
			if len(cfg[f.Key]) > MaxMultilineLen {
				return &FieldError{Key: f.Key, Err: ErrTooLong}
			}
		}
	}
	return nil
}

// Field returns the field with the given key.
func (s Schema) Field(key string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// secretValues returns the non-empty values cfg holds for the schema's secret
// fields.
func (s Schema) secretValues(cfg Config) []string {
	var out []string
	for _, f := range s.Fields {
		if f.Type == FieldSecret && cfg[f.Key] != "" {
			out = append(out, cfg[f.Key])
		}
	}
	return out
}
