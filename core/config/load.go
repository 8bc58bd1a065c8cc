package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// delim separates nested keys inside koanf. It is a byte no key contains, so
// YAML keys that hold dots (metric-path globs, host names) stay whole.
const delim = "\x1f"

// EnvPrefix prefixes environment overrides: HBD_HBD_PORT=50010 sets hbd_port,
// and a double underscore descends a level: HBD_ALERTING__STALE_AFTER=10m.
const EnvPrefix = "HBD_"

// MaxFileBytes bounds the config file size.
const MaxFileBytes = 4 << 20

// Error is a configuration problem: the file, the key (dotted path) and what
// is wrong with it.
type Error struct {
	File string
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// Load reads, decodes and validates the file at path with HBD_ environment
// overrides from environ (os.Environ when nil). The error is an *Error
// naming the file and key.
func Load(path string, environ []string) (*Config, error) {
	raw, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, raw, environ)
}

// Parse decodes and validates config bytes; name is used in errors. The
// admin config editor uses it to check a file before writing it.
func Parse(name string, raw []byte, environ []string) (*Config, error) {
	fail := func(key, format string, a ...any) error {
		return &Error{File: name, Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	ko := koanf.New(delim)
	if err := ko.Load(rawbytes.Provider(raw), yaml.Parser()); err != nil {
		return nil, fail("", "invalid YAML: %v%s", err, yamlHint(raw, err.Error()))
	}
	if environ == nil {
		environ = os.Environ()
	}
	overrides, notKeys := splitEnviron(environ)
	envp := env.Provider(delim, env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return overrides },
		TransformFunc: func(k, v string) (string, any) {
			return envKey(k), v
		},
	})
	fileKeys := map[string]bool{}
	var fileLists []string // keys holding lists (maintenance:): koanf does not flatten them
	for _, k := range ko.Keys() {
		fileKeys[strings.ReplaceAll(k, delim, ".")] = true
		if _, ok := ko.Get(k).([]any); ok {
			fileLists = append(fileLists, strings.ReplaceAll(k, delim, ".")+".")
		}
	}
	if err := ko.Load(envp, nil); err != nil {
		return nil, fail("", "environment overrides: %v", err)
	}

	cfg := defaults()
	cfg.File = name
	cfg.ExplicitNoHosts = explicitlyEmpty(ko.Get("watchhosts"))
	cfg.ExplicitNoChannels = explicitlyEmpty(ko.Get("notification_channels"))
	chans, err := parseChannels(ko.Get("notification_channels"))
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = name
		}
		return nil, err
	}
	cfg.Channels = chans
	ko.Delete("notification_channels")

	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		WeaklyTypedInput: true,
		Metadata:         &md,
		Result:           &cfg,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			commaListHook,
		),
	})
	if err != nil {
		return nil, fail("", "internal decoder: %v", err)
	}
	if err := dec.Decode(ko.Raw()); err != nil {
		key, msg := decodeProblem(err, ko.Raw())
		return nil, fail(key, "%s", msg)
	}
	// An unknown key from the file is an error; one that only the
	// environment sets (HBD_SRC=… of some other tool) is ignored, with a
	// warning naming it.
	sort.Strings(md.Unused)
	fromEnv := notKeys
	for _, u := range md.Unused {
		key := dotted(u)
		if inFile(fileKeys, key) || inList(fileLists, key) {
			return nil, fail(key, "unknown key")
		}
		// splitEnviron let through a variable decoding did not use.
		if name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__")); !slices.Contains(fromEnv, name) {
			fromEnv = append(fromEnv, name)
		}
	}
	if len(fromEnv) > 0 {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("ignoring environment variables that set no config key: %s", strings.Join(fromEnv, ", ")))
	}
	cfg.applyEntryDefaults()
	if err := cfg.validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = name
		}
		return nil, err
	}
	return &cfg, nil
}

// envKey is the koanf key an HBD_ variable sets: HBD_ALERTING__STALE_AFTER
// sets alerting.stale_after.
func envKey(name string) string {
	k := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
	return strings.ReplaceAll(k, "__", delim)
}

// splitEnviron keeps the HBD_ variables that name a config key
// (isConfigKey) and returns the names of the others, as spelt, sorted.
func splitEnviron(environ []string) (overrides, notKeys []string) {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if isConfigKey(strings.Split(envKey(name), delim)) {
			overrides = append(overrides, kv)
		} else {
			notKeys = append(notKeys, name)
		}
	}
	sort.Strings(notKeys)
	return overrides, notKeys
}

// configType is the type the file and the environment decode into.
var configType = reflect.TypeFor[Config]()

// isConfigKey reports whether path names a key of Config: a field by its
// koanf tag, an entry of a map, or below one, as far as the types go; a
// path that goes on below a scalar or a list is none.
// notification_channels is decoded apart (parseChannels): any
// notification_channels.<name>.<setting> is a key.
func isConfigKey(path []string) bool {
	if path[0] == "notification_channels" {
		return len(path) <= 3 && !slices.Contains(path, "")
	}
	t := configType
	for _, seg := range path {
		if seg == "" {
			return false
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, seg)
			if !ok {
				return false
			}
			t = f.Type
		default:
			return false
		}
	}
	return true
}

// fieldByKey finds the field of struct t that key decodes into, as
// mapstructure matches it: by the koanf tag, or by the field's name when
// it has none.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if tag == "-" {
			continue
		}
		if tag == key || (tag == "" && strings.EqualFold(f.Name, key)) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// inFile reports whether the file set key or something below it.
func inFile(fileKeys map[string]bool, key string) bool {
	if fileKeys[key] {
		return true
	}
	for k := range fileKeys {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// inList reports whether key lies inside a list the file set.
func inList(lists []string, key string) bool {
	for _, l := range lists {
		if strings.HasPrefix(key, l) {
			return true
		}
	}
	return false
}

// explicitlyEmpty reports whether a YAML value is an empty map written as
// `{}`; a key left without a value (a file cut after `watchhosts:`) is nil.
func explicitlyEmpty(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var bracketRE = regexp.MustCompile(`\[([^\]]*)\]`)

// dotted turns mapstructure's "watchhosts[web01].kee" into "watchhosts.web01.kee".
func dotted(k string) string {
	return bracketRE.ReplaceAllString(strings.ReplaceAll(k, delim, "."), ".$1")
}

// durationHook decodes durations written as Go durations ("90s", "1h30m"),
// whole days ("30d"), or plain numbers of seconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseDuration(v)
	case int:
		return time.Duration(v) * time.Second, nil
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	}
	return data, nil
}

// ParseDuration accepts Go durations plus a "d" suffix for days.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 2h, 30d)", s)
	}
	return d, nil
}

// commaListHook lets an environment override give a list as "a,b,c".
func commaListHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() == reflect.String && to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.String {
		s := data.(string)
		if s == "" {
			return []string{}, nil
		}
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, nil
	}
	return data, nil
}

// parseChannels splits each channel's common keys from its type fields.
func parseChannels(v any) (map[string]Channel, error) {
	out := map[string]Channel{}
	if v == nil {
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Key: "notification_channels", Msg: "must be a map of channel name to settings"}
	}
	for name, rv := range m {
		key := "notification_channels." + name
		fields, ok := rv.(map[string]any)
		if !ok {
			return nil, &Error{Key: key, Msg: "must be a map of settings"}
		}
		ch := Channel{Fields: map[string]Secret{}}
		for k, fv := range fields {
			fk := key + "." + k
			switch k {
			case "type":
				ch.Type = fmt.Sprint(fv)
			case "min_level":
				ch.MinLevel = strings.ToUpper(fmt.Sprint(fv))
			case "owner":
				ch.Owner = fmt.Sprint(fv)
			case "private":
				b, ok := fv.(bool)
				if !ok {
					return nil, &Error{Key: fk, Msg: "must be true or false"}
				}
				ch.Private = b
			case "hosts":
				list, err := stringList(fv)
				if err != nil {
					return nil, &Error{Key: fk, Msg: err.Error()}
				}
				ch.Hosts = list
			default:
				switch x := fv.(type) {
				case string:
					ch.Fields[k] = Secret(x)
				case bool, int, int64, float64:
					ch.Fields[k] = Secret(fmt.Sprint(x))
				case []any:
					list, err := stringList(x)
					if err != nil {
						return nil, &Error{Key: fk, Msg: err.Error()}
					}
					ch.Fields[k] = Secret(strings.Join(list, ","))
				default:
					return nil, &Error{Key: fk, Msg: "must be a string, number, bool or list of strings"}
				}
			}
		}
		out[name] = ch
	}
	return out, nil
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("must be a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("must be a list of strings")
}
