package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/sdk"
)

// Where a channel is defined.
const (
	SourceConfig = "config" // hbd.yaml: read-only through the API
	SourceUser   = "user"   // created through the API, stored in SQLite
)

// Mask stands for every secret value the API returns. A PUT that sends it
// back keeps the stored secret.
const Mask = "•••"

// Bounds of a channel created or changed through the API.
const (
	MaxFields      = 64
	MaxValueLen    = 4096
	MaxHosts       = 64
	MaxHostPattern = 256
)

// validateTimeout bounds the plugin's Validate call of an API request.
const validateTimeout = 10 * time.Second

// Errors the API turns into status codes. Every error of a channel
// operation is an *Error wrapping one of them, with a message for the
// caller that holds no secret.
var (
	ErrNotFound    = errors.New("channel not found")                   // 404
	ErrForbidden   = errors.New("not the channel's owner")             // 403
	ErrReadOnly    = errors.New("channel is defined in the config")    // 403
	ErrExists      = errors.New("channel name taken")                  // 409
	ErrInvalid     = errors.New("invalid channel")                     // 400
	ErrUnavailable = errors.New("notifier plugin unavailable")         // 503
	ErrDelivery    = errors.New("test notification was not delivered") // 502
)

// Error is a channel operation's failure: Kind is one of the sentinel
// errors above, Msg what to tell the caller.
type Error struct {
	Kind error
	Msg  string
}

// Error returns the message for the caller.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns Kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// Channel is a notification channel from either source. Fields holds the
// type's settings, secrets included: it never leaves the package except
// towards the plugin.
type Channel struct {
	Name     string
	Type     string
	Owner    string
	Private  bool
	MinLevel string
	Hosts    []string
	Fields   map[string]string
	Source   string
}

// Caller is who asks for a channel operation: a user name (empty in open
// mode) and whether they are an administrator (always in open mode).
type Caller struct {
	User  string
	Admin bool
}

// sees reports whether c may see ch: public channels, their own private
// ones, everything for admins.
func (c Caller) sees(ch Channel) bool {
	return c.Admin || !ch.Private || (c.User != "" && ch.Owner == c.User)
}

// owns reports whether c may change, delete or test ch.
func (c Caller) owns(ch Channel) bool {
	return c.Admin || (c.User != "" && ch.Owner == c.User)
}

// ChannelView is a channel as the API shows it: secrets are masked.
type ChannelView struct {
	Name      string
	Type      string
	TypeLabel string
	Owner     string // empty when the channel has none
	Private   bool
	MinLevel  string
	Hosts     []string
	// Fields lists the type's fields in schema order. When the type is
	// missing the schema is unknown, so every stored value is masked.
	Fields      []FieldView
	Source      string
	TypeMissing bool
	// CoveredCount is how many of the hosts hbd knows (watchhosts and
	// hosts that reported) and the caller may see the channel receives
	// alerts of now (Route, before min_level). CoveredHosts names them,
	// sorted, at most MaxCoveredHosts.
	CoveredCount int
	CoveredHosts []string
}

// MaxCoveredHosts bounds ChannelView.CoveredHosts.
const MaxCoveredHosts = 100

// FieldView is one field of a ChannelView.
type FieldView struct {
	Key       string
	Label     string
	Value     string // Mask for secrets
	Sensitive bool
}

// ChannelInput is a create or update request. Nil pointers and absent
// Fields keys were not sent: an update keeps their stored values.
type ChannelInput struct {
	Name     string // ignored by updates (the name comes from the URL)
	Type     string // required to create; an update may only repeat it
	MinLevel *string
	Private  *bool
	Hosts    *[]string
	// Fields are the type's settings as sent; "" clears one, and Mask
	// keeps a stored secret.
	Fields map[string]string
}

// ChannelTypes returns the schema of every installed channel type.
func (d *Dispatcher) ChannelTypes() map[string]sdk.Schema { return d.opts.Plugins.Types() }

// channel returns a channel by name; a config channel hides a user
// channel of the same name.
func (d *Dispatcher) channel(name string) (Channel, bool) {
	if cc, ok := d.opts.Config().Channels[name]; ok {
		return fromConfig(name, cc), true
	}
	d.mu.RLock()
	uc, ok := d.user[name]
	d.mu.RUnlock()
	if !ok {
		return Channel{}, false
	}
	return fromUser(uc), true
}

func fromConfig(name string, cc config.Channel) Channel {
	return Channel{Name: name, Type: cc.Type, Owner: cc.Owner, Private: cc.Private, MinLevel: cc.MinLevel,
		Hosts: cc.Hosts, Fields: cc.Fields, Source: SourceConfig}
}

func fromUser(uc store.UserChannel) Channel {
	return Channel{Name: uc.Name, Type: uc.Type, Owner: uc.Owner, Private: uc.Private, MinLevel: uc.MinLevel,
		Hosts: uc.Hosts, Fields: uc.Fields, Source: SourceUser}
}

// Channels returns every channel, config ones first, each sorted by name.
func (d *Dispatcher) Channels() []Channel {
	cfg := d.opts.Config()
	var out []Channel
	for _, name := range sortedKeys(cfg.Channels) {
		out = append(out, fromConfig(name, cfg.Channels[name]))
	}
	d.mu.RLock()
	for _, name := range sortedKeys(d.user) {
		if _, shadowed := cfg.Channels[name]; !shadowed {
			out = append(out, fromUser(d.user[name]))
		}
	}
	d.mu.RUnlock()
	return out
}

// CheckConfigChannels checks every channel of the config file with its
// type's plugin, and the watchhosts notify lists, and returns the problems
// it found; each is also logged and journaled. Start runs it; the daemon
// runs it again after a config reload (and may after a plugin rescan).
// A channel with a problem stays configured: deliveries through it fail
// and are journaled until it is fixed.
func (d *Dispatcher) CheckConfigChannels(ctx context.Context) []error {
	cfg := d.opts.Config()
	types := d.opts.Plugins.Types()
	var errs []error
	for _, name := range sortedKeys(cfg.Channels) {
		cc := cfg.Channels[name]
		key := "notification_channels." + name
		schema, ok := types[cc.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: type '%s' is not installed (installed: %s)", key, cc.Type, installed(types)))
			continue
		}
		for _, k := range sortedKeys(cc.Fields) {
			if _, ok := schema.Field(k); !ok {
				errs = append(errs, fmt.Errorf("%s.%s: not a field of type '%s'", key, k, cc.Type))
			}
		}
		if err := d.validate(ctx, schema, cc.Fields); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", key, err))
		}
	}
	for _, host := range sortedKeys(cfg.Watchhosts) {
		for _, n := range cfg.Watchhosts[host].Notify {
			if _, ok := d.channel(n); !ok {
				errs = append(errs, fmt.Errorf("watchhosts.%s.notify: no channel named '%s'", host, n))
			}
		}
	}
	for _, err := range errs {
		d.log.Error("notification channel problem", "error", err)
		d.opts.Store.Journal("", "notification channel problem: "+err.Error())
	}
	return errs
}

// ChannelVisible reports whether user may see channel (and so subscribe to
// it): it exists and is public, theirs, or they are an admin. The daemon
// hands it to auth.Service.SetChannelVisible.
func (d *Dispatcher) ChannelVisible(user, channel string) bool {
	ch, ok := d.channel(channel)
	if !ok {
		return false
	}
	return visibleTo(d.opts.Config(), user, ch)
}

// visibleTo reports whether user may see ch under cfg.
func visibleTo(cfg *config.Config, user string, ch Channel) bool {
	return Caller{User: user, Admin: cfg.OpenMode() || cfg.Users[user].Admin}.sees(ch)
}

// ListChannels returns the channels c may see, sorted by name, secrets
// masked, each with the hosts it covers now.
func (d *Dispatcher) ListChannels(c Caller) []ChannelView {
	types := d.opts.Plugins.Types()
	cfg := d.opts.Config()
	covered := d.coverage(cfg)
	out := []ChannelView{}
	for _, ch := range d.Channels() {
		if !c.sees(ch) {
			continue
		}
		v := view(ch, types)
		hosts := covered[ch.Name]
		v.CoveredHosts = []string{}
		for _, h := range hosts {
			// Only hosts the caller may see are named or counted: the
			// count must not tell a user how large the fleet is.
			if c.Admin || (c.User != "" && d.canSee(cfg, c.User, h)) {
				v.CoveredCount++
				if len(v.CoveredHosts) < MaxCoveredHosts {
					v.CoveredHosts = append(v.CoveredHosts, h)
				}
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ChannelView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// coverage returns, per channel name, the known hosts (KnownHosts) whose
// alerts the channel receives now, sorted.
func (d *Dispatcher) coverage(cfg *config.Config) map[string][]string {
	out := map[string][]string{}
	for _, h := range d.KnownHosts() {
		for name := range d.candidates(cfg, h, false) {
			out[name] = append(out[name], h)
		}
	}
	return out
}

// KnownHosts returns, sorted, the hosts the daemon knows: those of
// watchhosts and those that reported (the store's hosts).
func (d *Dispatcher) KnownHosts() []string {
	set := map[string]struct{}{}
	for h := range d.opts.Config().Watchhosts {
		set[h] = struct{}{}
	}
	for _, h := range d.opts.Store.Hosts() {
		set[h.Name] = struct{}{}
	}
	return sortedKeys(set)
}

func view(ch Channel, types map[string]sdk.Schema) ChannelView {
	v := ChannelView{Name: ch.Name, Type: ch.Type, Owner: ch.Owner, Private: ch.Private, MinLevel: ch.MinLevel,
		Hosts: slices.Clone(ch.Hosts), Source: ch.Source, Fields: []FieldView{}}
	if v.Hosts == nil {
		v.Hosts = []string{}
	}
	schema, ok := types[ch.Type]
	if !ok {
		v.TypeLabel, v.TypeMissing = ch.Type, true
		for _, k := range sortedKeys(ch.Fields) {
			v.Fields = append(v.Fields, FieldView{Key: k, Label: k, Value: Mask, Sensitive: true})
		}
		return v
	}
	v.TypeLabel = schema.Label
	for _, f := range schema.Fields {
		fv := FieldView{Key: f.Key, Label: f.Label, Value: ch.Fields[f.Key]}
		if f.Type == sdk.FieldSecret {
			fv.Value, fv.Sensitive = Mask, true
		}
		v.Fields = append(v.Fields, fv)
	}
	return v
}

// CreateChannel creates a user channel owned by c.User.
func (d *Dispatcher) CreateChannel(ctx context.Context, c Caller, in ChannelInput) error {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	if in.Name == "" {
		return errorf(ErrInvalid, "Field 'name' is required")
	}
	if !config.ValidChannelName(in.Name) {
		return errorf(ErrInvalid, "Invalid channel name%s: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", echo(in.Name))
	}
	if _, ok := d.channel(in.Name); ok {
		return errorf(ErrExists, "Channel '%s' already exists", in.Name)
	}
	if in.Type == "" {
		return errorf(ErrInvalid, "Field 'type' is required")
	}
	types := d.opts.Plugins.Types()
	schema, ok := types[in.Type]
	if !ok {
		return errorf(ErrInvalid, "Unknown channel type%s (installed: %s)", echo(in.Type), installed(types))
	}
	now := d.opts.Now()
	uc := store.UserChannel{Name: in.Name, Type: in.Type, Owner: c.User, MinLevel: string(sdk.LevelWarning),
		Fields: map[string]string{}, Hosts: []string{}, Created: now, Updated: now}
	if err := apply(&uc, in, schema, nil); err != nil {
		return err
	}
	if err := d.validate(ctx, schema, uc.Fields); err != nil {
		return err
	}
	if err := d.opts.Store.PutUserChannel(ctx, uc); err != nil {
		return fmt.Errorf("create channel %s: %w", uc.Name, err)
	}
	d.mu.Lock()
	d.user[uc.Name] = uc
	d.mu.Unlock()
	d.opts.Store.Journal("", fmt.Sprintf("notification channel %s (%s) created by %s", uc.Name, uc.Type, who(c)))
	return nil
}

// UpdateChannel changes a user channel. Keys not sent keep their values;
// secrets sent as Mask keep the stored secret.
func (d *Dispatcher) UpdateChannel(ctx context.Context, c Caller, name string, in ChannelInput) error {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	ch, err := d.modifiable(c, name, "change")
	if err != nil {
		return err
	}
	if in.Type != "" && in.Type != ch.Type {
		return errorf(ErrInvalid, "The type of channel '%s' cannot be changed; delete it and create a new one", name)
	}
	schema, ok := d.opts.Plugins.Types()[ch.Type]
	if !ok {
		return errorf(ErrInvalid, "Channel type '%s' is not installed, so channel '%s' cannot be checked; install its plugin or delete the channel", ch.Type, name)
	}
	d.mu.RLock()
	uc := d.user[name]
	d.mu.RUnlock()
	old := uc.Fields
	uc.Fields = maps.Clone(old)
	if uc.Fields == nil {
		uc.Fields = map[string]string{}
	}
	uc.Hosts = slices.Clone(uc.Hosts)
	uc.Updated = d.opts.Now()
	if err := apply(&uc, in, schema, old); err != nil {
		return err
	}
	if err := d.validate(ctx, schema, uc.Fields); err != nil {
		return err
	}
	if err := d.opts.Store.PutUserChannel(ctx, uc); err != nil {
		return fmt.Errorf("update channel %s: %w", name, err)
	}
	d.mu.Lock()
	d.user[name] = uc
	d.mu.Unlock()
	d.opts.Store.Journal("", fmt.Sprintf("notification channel %s changed by %s", name, who(c)))
	return nil
}

// DeleteChannel deletes a user channel and drops its pending deliveries.
func (d *Dispatcher) DeleteChannel(ctx context.Context, c Caller, name string) error {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	if _, err := d.modifiable(c, name, "delete"); err != nil {
		return err
	}
	if err := d.opts.Store.DeleteUserChannel(ctx, name); err != nil {
		return fmt.Errorf("delete channel %s: %w", name, err)
	}
	d.mu.Lock()
	delete(d.user, name)
	q := d.queues[name]
	d.mu.Unlock()
	if q != nil {
		if items := q.clear(); len(items) > 0 {
			for _, dl := range items {
				d.drop(dl, "")
			}
			d.opts.Store.Journal("", fmt.Sprintf("notification channel %s deleted with %d pending notifications", name, len(items)))
			d.log.Warn("notification channel deleted with pending notifications", "channel", name, "count", len(items))
		}
	}
	d.opts.Store.Journal("", fmt.Sprintf("notification channel %s deleted by %s", name, who(c)))
	return nil
}

// TestChannel sends a test event through a channel and waits for the
// outcome. Only its owner or an admin may test a channel.
func (d *Dispatcher) TestChannel(ctx context.Context, c Caller, name string) error {
	ch, ok := d.channel(name)
	if !ok || !c.sees(ch) {
		return errorf(ErrNotFound, "Channel%s not found", echo(name))
	}
	if !c.owns(ch) {
		return errorf(ErrForbidden, "Only the owner of channel '%s' or an admin may test it", name)
	}
	if _, ok := d.opts.Plugins.Types()[ch.Type]; !ok {
		return errorf(ErrDelivery, "Channel type '%s' is not installed", ch.Type)
	}
	ev := sdk.Event{ID: newID(), Channel: name, Level: sdk.LevelOK, Time: d.opts.Now(), Test: true,
		Message: "Test notification requested by " + who(c)}
	if d.opts.PublicURL != "" {
		ev.URL = d.opts.PublicURL + "/alerts"
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.AttemptTimeout)
	defer cancel()
	err := d.opts.Plugins.Notify(ctx, ch.Type, pluginConfig(d.opts.Config(), ch), ev)
	if err != nil {
		// Users learn the outcome and its generic reason; what the
		// remote side answered goes to the daemon log, and to admins.
		reason := publicReason(err)
		detail := redact(err.Error(), ch, d.opts.Plugins.Types())
		d.opts.Store.Journal("", fmt.Sprintf("notify %s test: failed: %s", name, reason))
		d.log.Warn("test notification failed", "channel", name, "by", who(c), "reason", reason, "error", detail)
		if c.Admin {
			return errorf(ErrDelivery, "Test notification through '%s' failed: %s (%s)", name, reason, detail)
		}
		return errorf(ErrDelivery, "Test notification through '%s' failed: %s", name, reason)
	}
	d.opts.Store.Journal("", fmt.Sprintf("notify %s test: delivered", name))
	return nil
}

// modifiable returns the user channel c may change or delete.
func (d *Dispatcher) modifiable(c Caller, name, verb string) (Channel, error) {
	ch, ok := d.channel(name)
	if !ok || !c.sees(ch) {
		return Channel{}, errorf(ErrNotFound, "Channel%s not found", echo(name))
	}
	if ch.Source == SourceConfig {
		return Channel{}, errorf(ErrReadOnly, "Channel '%s' is defined in the config file and cannot be %s through the API; edit the config file and reload hbd", name, pastTense(verb))
	}
	if !c.owns(ch) {
		return Channel{}, errorf(ErrForbidden, "Only the owner of channel '%s' or an admin may %s it", name, verb)
	}
	return ch, nil
}

func pastTense(verb string) string {
	if verb == "change" {
		return "changed"
	}
	return verb + "d"
}

// apply copies the sent settings into uc, checking each. old holds the
// stored fields for Mask to keep (nil when creating).
func apply(uc *store.UserChannel, in ChannelInput, schema sdk.Schema, old map[string]string) error {
	if in.MinLevel != nil {
		lv := strings.ToUpper(strings.TrimSpace(*in.MinLevel))
		if !config.ValidLevel(lv) {
			return errorf(ErrInvalid, "Invalid min_level%s: use OK, UNKNOWN, WARNING or CRITICAL", echo(*in.MinLevel))
		}
		uc.MinLevel = lv
	}
	if in.Private != nil {
		uc.Private = *in.Private
	}
	if in.Hosts != nil {
		hosts := *in.Hosts
		if len(hosts) > MaxHosts {
			return errorf(ErrInvalid, "Field 'hosts' has more than %d patterns", MaxHosts)
		}
		uc.Hosts = []string{}
		for _, h := range hosts {
			h = strings.TrimSpace(h)
			if len(h) > MaxHostPattern {
				return errorf(ErrInvalid, "Field 'hosts': pattern longer than %d characters", MaxHostPattern)
			}
			if _, err := glob.Compile(h); err != nil {
				return errorf(ErrInvalid, "Field 'hosts': invalid pattern%s: %v", echo(h), err)
			}
			uc.Hosts = append(uc.Hosts, h)
		}
	}
	if len(in.Fields) > MaxFields {
		return errorf(ErrInvalid, "Too many fields (at most %d)", MaxFields)
	}
	for _, k := range sortedKeys(in.Fields) {
		v := in.Fields[k]
		f, ok := schema.Field(k)
		if !ok {
			return errorf(ErrInvalid, "Unknown field%s for channel type '%s'", echo(k), schema.Type)
		}
		if len(v) > MaxValueLen {
			return errorf(ErrInvalid, "Field '%s' is longer than %d bytes", k, MaxValueLen)
		}
		if f.Type == sdk.FieldSecret && v == Mask {
			if old == nil {
				return errorf(ErrInvalid, "Field '%s': send the secret itself, not the mask '%s'", k, Mask)
			}
			continue // keep the stored secret
		}
		if v == "" {
			delete(uc.Fields, k)
		} else {
			uc.Fields[k] = v
		}
	}
	return nil
}

// validate checks fields with the schema's generic rules, then with the
// plugin's own Validate.
func (d *Dispatcher) validate(ctx context.Context, schema sdk.Schema, fields map[string]string) error {
	if err := schema.Validate(sdk.Config(fields).WithDefaults(schema)); err != nil {
		var fe *sdk.FieldError
		if errors.As(err, &fe) {
			return errorf(ErrInvalid, "Field '%s' %s", fe.Key, fe.Err)
		}
		return errorf(ErrInvalid, "Invalid channel settings: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	err := d.opts.Plugins.Validate(ctx, schema.Type, sdk.Config(fields))
	if err == nil {
		return nil
	}
	ch := Channel{Type: schema.Type, Fields: fields}
	msg := redact(err.Error(), ch, map[string]sdk.Schema{schema.Type: schema})
	var re *sdk.RemoteError
	if errors.As(err, &re) {
		return errorf(ErrInvalid, "Invalid channel settings: %s", msg)
	}
	return errorf(ErrUnavailable, "The %s notifier could not check the settings (%s); try again", schema.Type, msg)
}

// redact removes the channel's secret values from an error message, in
// every form sdk.Redact knows. The SDK already does so in the plugin;
// this is the second line of defence. With no schema every value of some
// length is treated as secret.
func redact(msg string, ch Channel, types map[string]sdk.Schema) string {
	schema, known := types[ch.Type]
	var secrets []string
	for k, v := range ch.Fields {
		if v == "" {
			continue
		}
		secret := !known && len(v) >= 6
		if f, ok := schema.Field(k); known && ok && f.Type == sdk.FieldSecret {
			secret = true
		}
		if secret {
			secrets = append(secrets, v)
		}
	}
	return sdk.Redact(msg, secrets)
}

func installed(types map[string]sdk.Schema) string {
	if len(types) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(types), ", ")
}

func who(c Caller) string {
	if c.User == "" {
		return "(open mode)"
	}
	return c.User
}

// echo returns " 'in'" to quote the caller's input in a message, or ""
// when it is too long or not plain printable text (it is left out then).
func echo(in string) string {
	if in == "" || len(in) > 64 {
		return ""
	}
	for _, r := range in {
		if r < 0x20 || r > 0x7e || r == '\'' {
			return ""
		}
	}
	return " '" + in + "'"
}
