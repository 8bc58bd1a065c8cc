package channels

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/level"
)

// Defaults for the zero fields of Options.
const (
	DefaultValidateTimeout = 10 * time.Second
	DefaultTestTimeout     = 30 * time.Second
)

// Options configure a Registry. Config, Store, Journal, Plugins and Policy
// are required.
type Options struct {
	// Config returns the configuration in force (it changes on SIGHUP):
	// its notification_channels, watchhosts notify lists,
	// channel_destinations and ports.
	Config  func() *config.Config
	Store   Repository
	Journal Journal
	Plugins Notifier
	Policy  Policy
	Logger  hclog.Logger
	// PublicURL, when set, replaces the configuration's public_url as the
	// web UI's base URL for links in test notifications.
	PublicURL string
	// ValidateTimeout bounds the plugin's Validate call of a create or
	// update; TestTimeout bounds a test notification.
	ValidateTimeout time.Duration
	TestTimeout     time.Duration
	// Now is the clock of channel and test-event timestamps.
	Now func() time.Time
}

// Registry holds the notification channels. Build it with New.
//
// Lock order: chMu (serializes create, update and delete) before mu (the
// user channels and watchers). Watchers are called with chMu held and mu
// released.
type Registry struct {
	opts Options
	log  hclog.Logger

	chMu     sync.Mutex
	mu       sync.RWMutex
	user     map[string]Channel
	watchers []Watcher
	// problems holds, by channel name, why a stored channel no longer
	// passes its type's checks (see revalidate.go); guarded by mu.
	problems map[string]Problem
}

// New returns a Registry; call Start before use.
func New(opts Options) (*Registry, error) {
	if opts.Config == nil || opts.Store == nil || opts.Journal == nil || opts.Plugins == nil || opts.Policy == nil {
		return nil, errors.New("channels: Config, Store, Journal, Plugins and Policy are required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.ValidateTimeout <= 0 {
		opts.ValidateTimeout = DefaultValidateTimeout
	}
	if opts.TestTimeout <= 0 {
		opts.TestTimeout = DefaultTestTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{opts: opts, log: opts.Logger.Named("channels"), user: map[string]Channel{}, problems: map[string]Problem{}}, nil
}

// Start loads the user channels and checks the config channels
// (CheckConfigChannels). Start the plugin host first, so the channel
// types are known.
func (r *Registry) Start(ctx context.Context) error {
	chans, err := r.opts.Store.UserChannels(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, c := range chans {
		c.Source = SourceUser
		r.user[c.Name] = c
	}
	r.mu.Unlock()
	r.CheckConfigChannels(ctx)
	// A plugin may have been upgraded while the daemon was down.
	r.mu.RLock()
	names := sortedKeys(r.user)
	r.mu.RUnlock()
	r.revalidateUsers(ctx, names, true)
	return nil
}

// Watch adds w to the watchers told of channels that stop existing.
func (r *Registry) Watch(w Watcher) {
	r.mu.Lock()
	r.watchers = append(r.watchers, w)
	r.mu.Unlock()
}

func (r *Registry) watching() []Watcher {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.watchers)
}

// Reload checks the config channels of the config now in force and tells
// the watchers (ChannelsReloaded). The daemon calls it after every config
// reload.
func (r *Registry) Reload(ctx context.Context) []error {
	errs := r.CheckConfigChannels(ctx)
	for _, w := range r.watching() {
		w.ChannelsReloaded()
	}
	return errs
}

// ChannelTypes returns the schema of every installed channel type.
func (r *Registry) ChannelTypes() map[string]sdk.Schema { return r.opts.Plugins.Types() }

// Channel returns a channel by name; a config channel hides a user
// channel of the same name.
func (r *Registry) Channel(name string) (Channel, bool) {
	if cc, ok := r.opts.Config().Channels[name]; ok {
		return fromConfig(name, cc), true
	}
	r.mu.RLock()
	c, ok := r.user[name]
	r.mu.RUnlock()
	return c, ok
}

func fromConfig(name string, cc config.Channel) Channel {
	return Channel{Name: name, Type: cc.Type, Owner: cc.Owner, Private: cc.Private, MinLevel: cc.MinLevel,
		Hosts: cc.Hosts, Fields: cc.FieldValues(), Source: SourceConfig}
}

// Channels returns every channel, config ones first, each sorted by name.
func (r *Registry) Channels() []Channel {
	cfg := r.opts.Config()
	var out []Channel
	for _, name := range sortedKeys(cfg.Channels) {
		out = append(out, fromConfig(name, cfg.Channels[name]))
	}
	r.mu.RLock()
	for _, name := range sortedKeys(r.user) {
		if _, shadowed := cfg.Channels[name]; !shadowed {
			out = append(out, r.user[name])
		}
	}
	r.mu.RUnlock()
	return out
}

// CheckConfigChannels checks every channel of the config file with its
// type's plugin, and the watchhosts notify lists, and returns the problems
// it found; each is also logged and journaled. Start and Reload run it
// (the daemon may run it after a plugin rescan). A channel with a problem
// stays configured: deliveries through it fail and are journaled until it
// is fixed.
func (r *Registry) CheckConfigChannels(ctx context.Context) []error {
	cfg := r.opts.Config()
	types := r.opts.Plugins.Types()
	var errs []error
	for _, name := range sortedKeys(cfg.Channels) {
		problems, settings, checked := checkFileChannel(ctx, r.opts.Plugins, r.opts.ValidateTimeout, types, name, cfg.Channels[name])
		errs = append(errs, problems...)
		if checked {
			r.note(name, settings, false) // journaled below
		}
	}
	for _, host := range sortedKeys(cfg.Watchhosts) {
		for _, n := range cfg.Watchhosts[host].Notify {
			if _, ok := r.Channel(n); !ok {
				errs = append(errs, fmt.Errorf("watchhosts.%s.notify: no channel named '%s'", host, n))
			}
		}
	}
	for _, err := range errs {
		r.log.Error("notification channel problem", "error", err)
		r.opts.Journal.Journal("", "notification channel problem: "+err.Error())
	}
	return errs
}

// ChannelVisible reports whether user may see channel (and so subscribe to
// it): it exists and the access policy lets user see it (public, theirs,
// or they are an admin). Auth checks subscriptions with it, the dispatcher
// routes subscriptions only while it holds.
func (r *Registry) ChannelVisible(user, channel string) bool {
	ch, ok := r.Channel(channel)
	if !ok {
		return false
	}
	pr, _ := r.opts.Policy.PrincipalOf(user)
	return r.opts.Policy.CanSeeChannel(pr, ch.Access())
}

// ListChannels returns the channels pr may see, sorted by name, secrets
// masked, each with the hosts it covers now: covered holds, per channel
// name, the known hosts whose alerts it receives (the dispatcher's
// Coverage; nil for none). Only hosts pr may see are named or counted.
func (r *Registry) ListChannels(pr access.Principal, covered map[string][]string) []View {
	types := r.opts.Plugins.Types()
	pol := r.opts.Policy
	out := []View{}
	for _, ch := range r.Channels() {
		if !pol.CanSeeChannel(pr, ch.Access()) {
			continue
		}
		v := view(ch, types)
		if p, ok := r.problem(ch.Name); ok {
			v.Problem = &p
		}
		v.CoveredHosts = []string{}
		for _, h := range covered[ch.Name] {
			// The count must not tell a user how large the fleet is.
			if pol.IsAdmin(pr) || (pr.User != "" && pol.UserCanSee(pr.User, h)) {
				v.CoveredCount++
				if len(v.CoveredHosts) < MaxCoveredHosts {
					v.CoveredHosts = append(v.CoveredHosts, h)
				}
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b View) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func view(ch Channel, types map[string]sdk.Schema) View {
	v := View{Name: ch.Name, Type: ch.Type, Owner: ch.Owner, Private: ch.Private, MinLevel: ch.MinLevel,
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

// CreateChannel creates a user channel owned by pr.User.
func (r *Registry) CreateChannel(ctx context.Context, pr access.Principal, in Input) error {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	if in.Name == "" {
		return fieldErrorf("name", "Field 'name' is required")
	}
	if !config.ValidChannelName(in.Name) {
		return fieldErrorf("name", "Invalid channel name%s: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", echo(in.Name))
	}
	if _, ok := r.Channel(in.Name); ok {
		return errorf(ErrExists, "Channel '%s' already exists", in.Name)
	}
	if in.Type == "" {
		return fieldErrorf("type", "Field 'type' is required")
	}
	types := r.opts.Plugins.Types()
	schema, ok := types[in.Type]
	if !ok {
		return fieldErrorf("type", "Unknown channel type%s (installed: %s)", echo(in.Type), installed(types))
	}
	now := r.opts.Now()
	c := Channel{Name: in.Name, Type: in.Type, Owner: pr.User, MinLevel: string(level.Warning),
		Fields: map[string]string{}, Hosts: []string{}, Source: SourceUser, Created: now, Updated: now}
	if err := apply(&c, in, schema, nil); err != nil {
		return err
	}
	if err := r.validate(ctx, schema, c.Fields); err != nil {
		return err
	}
	if err := r.opts.Store.PutUserChannel(ctx, c); err != nil {
		return fmt.Errorf("create channel %s: %w", c.Name, err)
	}
	r.mu.Lock()
	r.user[c.Name] = c
	delete(r.problems, c.Name)
	r.mu.Unlock()
	r.opts.Journal.Journal("", fmt.Sprintf("notification channel %s (%s) created by %s", c.Name, c.Type, who(pr)))
	return nil
}

// UpdateChannel changes a user channel. Keys not sent keep their values;
// secrets sent as Mask keep the stored secret.
func (r *Registry) UpdateChannel(ctx context.Context, pr access.Principal, name string, in Input) error {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	ch, err := r.modifiable(pr, name, "change")
	if err != nil {
		return err
	}
	if in.Type != "" && in.Type != ch.Type {
		return errorf(ErrInvalid, "The type of channel '%s' cannot be changed; delete it and create a new one", name)
	}
	schema, ok := r.opts.Plugins.Types()[ch.Type]
	if !ok {
		return errorf(ErrInvalid, "Channel type '%s' is not installed, so channel '%s' cannot be checked; install its plugin or delete the channel", ch.Type, name)
	}
	c := ch
	old := c.Fields
	c.Fields = maps.Clone(old)
	if c.Fields == nil {
		c.Fields = map[string]string{}
	}
	c.Hosts = slices.Clone(c.Hosts)
	c.Updated = r.opts.Now()
	if err := apply(&c, in, schema, old); err != nil {
		return err
	}
	verr := r.validate(ctx, schema, c.Fields)
	if verr != nil && !untouchedProblem(verr, old, c.Fields) {
		return verr
	}
	if err := r.opts.Store.PutUserChannel(ctx, c); err != nil {
		return fmt.Errorf("update channel %s: %w", name, err)
	}
	r.mu.Lock()
	r.user[name] = c
	r.mu.Unlock()
	r.opts.Journal.Journal("", fmt.Sprintf("notification channel %s changed by %s", name, who(pr)))
	r.note(name, verr, true)
	return nil
}

// DeleteChannel deletes a user channel and its pending deliveries, and
// tells the watchers (ChannelDeleted) before journaling the deletion.
func (r *Registry) DeleteChannel(ctx context.Context, pr access.Principal, name string) error {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	if _, err := r.modifiable(pr, name, "delete"); err != nil {
		return err
	}
	if err := r.opts.Store.DeleteUserChannel(ctx, name); err != nil {
		return fmt.Errorf("delete channel %s: %w", name, err)
	}
	r.mu.Lock()
	delete(r.user, name)
	delete(r.problems, name)
	r.mu.Unlock()
	for _, w := range r.watching() {
		w.ChannelDeleted(name)
	}
	r.opts.Journal.Journal("", fmt.Sprintf("notification channel %s deleted by %s", name, who(pr)))
	return nil
}

// TestChannel sends a test event through a channel and waits for the
// outcome. Only its owner or an admin may test a channel.
func (r *Registry) TestChannel(ctx context.Context, pr access.Principal, name string) error {
	pol := r.opts.Policy
	ch, ok := r.Channel(name)
	if !ok || !pol.CanSeeChannel(pr, ch.Access()) {
		return errorf(ErrNotFound, "Channel%s not found", echo(name))
	}
	if !pol.OwnsChannel(pr, ch.Access()) {
		return errorf(ErrForbidden, "Only the owner of channel '%s' or an admin may test it", name)
	}
	if _, ok := r.opts.Plugins.Types()[ch.Type]; !ok {
		return errorf(ErrDelivery, "Channel type '%s' is not installed", ch.Type)
	}
	ev := r.testEvent(name, pr)
	ctx, cancel := context.WithTimeout(ctx, r.opts.TestTimeout)
	defer cancel()
	err := r.opts.Plugins.Notify(ctx, ch.Type, r.PluginConfig(ch), ev)
	if err != nil {
		// Users learn the outcome and its generic reason; what the
		// remote side answered goes to the daemon log, and to admins.
		reason := PublicReason(err)
		detail := r.Redact(err.Error(), ch)
		r.opts.Journal.Journal("", fmt.Sprintf("notify %s test: failed: %s", name, reason))
		r.log.Warn("test notification failed", "channel", name, "by", who(pr), "reason", reason, "error", detail)
		if pol.IsAdmin(pr) {
			return errorf(ErrDelivery, "Test notification through '%s' failed: %s (%s)", name, reason, detail)
		}
		return errorf(ErrDelivery, "Test notification through '%s' failed: %s", name, reason)
	}
	r.opts.Journal.Journal("", fmt.Sprintf("notify %s test: delivered", name))
	return nil
}

// testEvent is the event of a test notification through channel name: the
// SDK's realistic sample (web01's CPU at 97.2 %, above its critical
// threshold of 95), marked as a test, timed now, with a fresh opaque ID
// (holding "/" and a space, as real IDs may) and the link under
// public_url. Templates render it as they would a real alert.
func (r *Registry) testEvent(name string, pr access.Principal) sdk.Event {
	now := r.opts.Now()
	ev := sdk.SampleEvent(sdk.KindTest)
	ev.ID = "test/" + name + "/" + newID() + " 1"
	ev.Channel = name
	ev.Time, ev.Since, ev.EpisodeStart = now, now.Add(-time.Minute), now.Add(-3*time.Minute)
	ev.Message = "Test notification requested by " + who(pr)
	public := r.opts.PublicURL
	if public == "" {
		public = r.opts.Config().PublicURL
	}
	ev.URL = HostURL(public, ev.Host, ev.MetricPath)
	return ev
}

// HostURL returns the link to host's page in the web UI under public (the
// public_url setting, without trailing slash), with metricPath's plugin and
// metric chart selected when it is a plugin metric (the alerts page links
// the same way). "" when public is "".
func HostURL(public, host, metricPath string) string {
	if public == "" {
		return ""
	}
	u := public + "/hosts/" + url.PathEscape(host)
	if plugin, metric, ok := strings.Cut(metricPath, "."); ok && plugin != "heartbeat" {
		u += "?" + url.Values{"plugin": {plugin}, "metric": {metric}}.Encode() + "#history"
	}
	return u
}

// modifiable returns the user channel pr may change or delete.
func (r *Registry) modifiable(pr access.Principal, name, verb string) (Channel, error) {
	ch, ok := r.Channel(name)
	if !ok || !r.opts.Policy.CanSeeChannel(pr, ch.Access()) {
		return Channel{}, errorf(ErrNotFound, "Channel%s not found", echo(name))
	}
	if ch.Source == SourceConfig {
		return Channel{}, errorf(ErrReadOnly, "Channel '%s' is defined in the config file and cannot be %s through the API; edit the config file and reload hbd", name, pastTense(verb))
	}
	if !r.opts.Policy.OwnsChannel(pr, ch.Access()) {
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

// apply copies the sent settings into c, checking each. old holds the
// stored fields for Mask to keep (nil when creating).
func apply(c *Channel, in Input, schema sdk.Schema, old map[string]string) error {
	if in.MinLevel != nil {
		lv := strings.ToUpper(strings.TrimSpace(*in.MinLevel))
		if !config.ValidLevel(lv) {
			return fieldErrorf("min_level", "Invalid min_level%s: use OK, UNKNOWN, WARNING or CRITICAL", echo(*in.MinLevel))
		}
		c.MinLevel = lv
	}
	if in.Private != nil {
		c.Private = *in.Private
	}
	if in.Hosts != nil {
		hosts := *in.Hosts
		if len(hosts) > MaxHosts {
			return fieldErrorf("hosts", "Field 'hosts' has more than %d patterns", MaxHosts)
		}
		c.Hosts = []string{}
		for _, h := range hosts {
			h = strings.TrimSpace(h)
			if len(h) > MaxHostPattern {
				return fieldErrorf("hosts", "Field 'hosts': pattern longer than %d characters", MaxHostPattern)
			}
			if _, err := glob.Compile(h); err != nil {
				return fieldErrorf("hosts", "Field 'hosts': invalid pattern%s: %v", echo(h), err)
			}
			c.Hosts = append(c.Hosts, h)
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
			return fieldErrorf(k, "Field '%s' is longer than %d bytes", k, MaxValueLen)
		}
		if f.Type == sdk.FieldSecret && v == Mask {
			if old == nil {
				return fieldErrorf(k, "Field '%s': send the secret itself, not the mask '%s'", k, Mask)
			}
			continue // keep the stored secret
		}
		if v == "" {
			delete(c.Fields, k)
		} else {
			c.Fields[k] = v
		}
	}
	return nil
}

// validate checks fields with the schema's generic rules, then with the
// plugin's own Validate.
func (r *Registry) validate(ctx context.Context, schema sdk.Schema, fields map[string]string) error {
	return validateWith(ctx, r.opts.Plugins, r.opts.ValidateTimeout, schema, fields)
}

// validateWith checks fields with schema, then with the type's plugin
// (within timeout).
func validateWith(ctx context.Context, plugins Notifier, timeout time.Duration, schema sdk.Schema, fields map[string]string) error {
	if err := schema.Validate(sdk.Config(fields).WithDefaults(schema)); err != nil {
		var fe *sdk.FieldError
		if errors.As(err, &fe) {
			return &Error{Kind: ErrInvalid, Field: fe.Key, Msg: fmt.Sprintf("Field '%s' %s", fe.Key, fe.Err)}
		}
		return errorf(ErrInvalid, "Invalid channel settings: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := plugins.Validate(ctx, schema.Type, sdk.Config(fields))
	if err == nil {
		return nil
	}
	ch := Channel{Type: schema.Type, Fields: fields}
	msg := redact(err.Error(), ch, map[string]sdk.Schema{schema.Type: schema})
	var re *sdk.RemoteError
	if errors.As(err, &re) {
		field := re.Field
		if _, ok := schema.Field(field); !ok {
			field = "" // the plugin named a key its schema lacks
		}
		return &Error{Kind: ErrInvalid, Field: field, Msg: "Invalid channel settings: " + msg}
	}
	return errorf(ErrUnavailable, "The %s notifier could not check the settings (%s); try again", schema.Type, msg)
}

// checkFileChannel checks channel name of the config file: its type is
// installed (one of types), its fields are the type's, and the schema and
// the plugin accept the values. problems lists everything wrong, each
// naming the key; settings is the schema's and plugin's verdict alone;
// checked is false when the type is not installed.
func checkFileChannel(ctx context.Context, plugins Notifier, timeout time.Duration, types map[string]sdk.Schema, name string, cc config.Channel) (problems []error, settings error, checked bool) {
	key := "notification_channels." + name
	schema, ok := types[cc.Type]
	if !ok {
		return []error{fmt.Errorf("%s: type '%s' is not installed (installed: %s)", key, cc.Type, installed(types))}, nil, false
	}
	for _, k := range sortedKeys(cc.Fields) {
		if _, ok := schema.Field(k); !ok {
			problems = append(problems, fmt.Errorf("%s.%s: not a field of type '%s'", key, k, cc.Type))
		}
	}
	settings = validateWith(ctx, plugins, timeout, schema, cc.FieldValues())
	if settings != nil {
		problems = append(problems, fmt.Errorf("%s: %s", key, settings))
	}
	return problems, settings, true
}

// CheckFileChannels checks the channels of cfg's file with plugins as a
// Registry's Start and Reload do, without a registry or a store: `hbd
// check-config` runs it on a plugin host started for the check. Each
// error names the key.
func CheckFileChannels(ctx context.Context, cfg *config.Config, plugins Notifier) []error {
	types := plugins.Types()
	var errs []error
	for _, name := range sortedKeys(cfg.Channels) {
		problems, _, _ := checkFileChannel(ctx, plugins, DefaultValidateTimeout, types, name, cfg.Channels[name])
		errs = append(errs, problems...)
	}
	return errs
}

// Redact removes ch's secret values from an error message, in every form
// sdk.Redact knows. The SDK already does so in the plugin; this is the
// second line of defence. When ch's type is not installed every value of
// some length is treated as secret.
func (r *Registry) Redact(msg string, ch Channel) string {
	return redact(msg, ch, r.opts.Plugins.Types())
}

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

func who(pr access.Principal) string {
	if pr.User == "" {
		return "(open mode)"
	}
	return pr.User
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

func errorf(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, a...)}
}

// fieldErrorf is an ErrInvalid error about the request field key.
func fieldErrorf(key, format string, a ...any) error {
	return &Error{Kind: ErrInvalid, Field: key, Msg: fmt.Sprintf(format, a...)}
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
