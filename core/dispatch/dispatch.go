// Package dispatch turns alert events into notifications: it routes each
// event to the channels that should hear of it (SPEC section 7) and keeps
// one persistent delivery queue per channel with retries and exponential
// backoff, journaling every attempt. The channels themselves live in the
// registry (package channels), which the dispatcher reads through the
// Channels interface; who may see what is the access policy's (package
// access), asked through Policy.
//
// Queues: a channel's queue and its worker goroutine start with the
// channel's first delivery and end once the queue is empty and the
// channel no longer exists (deleted through the API, or removed by a
// config reload; the registry tells the dispatcher through
// channels.Watcher). A channel that comes back gets a new queue with its
// next delivery.
//
// Lifecycle: New, then Start after the registry's Start (loads the
// deliveries left pending by the previous run), Dispatch or AlertEvent for
// every alert event, Close before the plugin host and the store are
// closed. All methods are safe for concurrent use.
package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/sdk"
	"github.com/hbdmon/hbd/sdk/level"
)

// Notifier is what the dispatcher needs of the plugin host
// (*pluginhost.Host provides it).
type Notifier interface {
	// Notify delivers ev through a channel of type typ configured by cfg.
	Notify(ctx context.Context, typ string, cfg sdk.Config, ev sdk.Event) error
}

// Channels is the channel registry the dispatcher routes to and delivers
// through (*channels.Registry provides it).
type Channels interface {
	// Channels returns every channel (a config channel hides a user
	// channel of the same name).
	Channels() []channels.Channel
	// Channel returns a channel by name.
	Channel(name string) (channels.Channel, bool)
	// ChannelVisible reports whether user may see the named channel.
	ChannelVisible(user, channel string) bool
	// PluginConfig returns what a Notify call of ch sends (its fields and
	// destination policy).
	PluginConfig(ch channels.Channel) sdk.Config
	// Redact removes ch's secrets from a plugin's error message.
	Redact(msg string, ch channels.Channel) string
	// Watch registers w to learn of channels that stop existing.
	Watch(w channels.Watcher)
}

// Policy is the access policy the dispatcher routes by (*access.Policy
// provides it).
type Policy interface {
	// UserCanSee reports whether the configured user may read host's data.
	UserCanSee(user, host string) bool
}

// Subscribers lists the users' channel subscriptions (the accounts
// service knows them, with each user's own changes).
type Subscribers interface {
	// Subscriptions returns every (user, channel name) pair.
	Subscriptions() []Subscription
}

// Defaults for the zero fields of Options.
const (
	DefaultRetryBase      = 2 * time.Second
	DefaultRetryMax       = 5 * time.Minute
	DefaultRetryAfterMax  = 15 * time.Minute
	DefaultMaxAttempts    = 10
	DefaultAttemptTimeout = 30 * time.Second
	DefaultQueueLimit     = 1000
	DefaultCloseGrace     = 3 * time.Second
)

// Options configure a Dispatcher. Config, Store, Channels, Plugins and
// Policy are required.
type Options struct {
	// Config returns the configuration in force (it changes on SIGHUP):
	// the watchhosts notify lists and the config file's users.
	Config func() *config.Config
	// Store keeps the delivery queue and accounting (the daemon passes
	// its *store.Store; see repository.go for the promises relied on).
	Store Repository
	// Channels is the channel registry.
	Channels Channels
	// Plugins delivers through the notifier plugins.
	Plugins Notifier
	// Policy decides which hosts a user may see: a user channel receives
	// the alerts of a host only when its owner may see it, a subscription
	// only when its user may (see Route).
	Policy Policy
	Logger hclog.Logger

	// Subscribers lists the users' subscriptions; nil uses the config
	// file's users. The dispatcher keeps those of users who can see the
	// alert's host, and checks each pair when routing: the user must still
	// be allowed to see the channel (see Route).
	Subscribers Subscribers
	// PublicURL, when set, replaces the configuration's public_url as the
	// web UI's base URL for links in notifications (e.g.
	// "https://hbd.example.com").
	PublicURL string

	RetryBase time.Duration // delay after the first failed attempt; doubles after each
	RetryMax  time.Duration // cap of the delay
	// RetryAfterMax bounds the wait a notifier may ask for with
	// sdk.RetryAfter (a service's 429 or 503 with Retry-After): the next
	// attempt comes after max(backoff, min(asked, RetryAfterMax)).
	RetryAfterMax  time.Duration
	MaxAttempts    int           // attempts before giving up
	AttemptTimeout time.Duration // bound of one attempt
	QueueLimit     int           // pending deliveries per channel; the oldest is dropped beyond
	CloseGrace     time.Duration // how long Close lets attempts in flight finish
	// Now is the clock of event and channel timestamps; tests may replace
	// it. Retry timing always uses the real clock.
	Now func() time.Time
	// Cluster, when set, delivers through the outbox Store shares with
	// the other daemons of a cluster (cluster.go); Store must then be the
	// PostgreSQL store. nil: a single daemon.
	Cluster *Cluster
}

// Dispatcher routes alert events and delivers them. Build it with New.
type Dispatcher struct {
	opts Options
	log  hclog.Logger

	mu sync.RWMutex
	// episode remembers the highest level routed for a (host, metric)
	// until its recovery, so a recovery reaches every channel that heard
	// of the problem even after a downgrade (CRITICAL -> WARNING -> OK).
	episode map[string]level.Level
	// queues holds the queue of every channel with a running worker; a
	// worker removes its queue (under mu) before it ends.
	queues  map[string]*queue
	started bool
	closed  bool

	stopping chan struct{} // closed by Close: workers take no new attempt
	attemptC context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	globs *glob.Cache
	acct  *accounting

	delivered atomic.Uint64
	failed    atomic.Uint64
	gaveUp    atomic.Uint64
	// perChannel counts the outcomes by channel and type for /metrics.
	perChannel channelCounters
	dropped    atomic.Uint64
	// refused counts events not queued because this daemon did not lead.
	refused atomic.Uint64

	cluster *clusterState // nil: a single daemon
}

// New returns a Dispatcher; call Start before dispatching.
func New(opts Options) (*Dispatcher, error) {
	if opts.Config == nil || opts.Store == nil || opts.Channels == nil || opts.Plugins == nil || opts.Policy == nil {
		return nil, errors.New("dispatch: Config, Store, Channels, Plugins and Policy are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.RetryBase, DefaultRetryBase)
	def(&opts.RetryMax, DefaultRetryMax)
	def(&opts.RetryAfterMax, DefaultRetryAfterMax)
	def(&opts.AttemptTimeout, DefaultAttemptTimeout)
	def(&opts.CloseGrace, DefaultCloseGrace)
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cs, err := setupCluster(&opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cluster:  cs,
		opts:     opts,
		log:      opts.Logger.Named("dispatch"),
		episode:  map[string]level.Level{},
		queues:   map[string]*queue{},
		globs:    glob.NewCache(0),
		acct:     newAccounting(),
		stopping: make(chan struct{}),
		attemptC: ctx,
		cancel:   cancel,
	}
	opts.Channels.Watch(d)
	return d, nil
}

// Start loads the deliveries still pending from the previous run and
// starts delivering them. Start the registry first, so their channels are
// known.
func (d *Dispatcher) Start(ctx context.Context) error {
	var pending []dispatchrecord.Delivery
	if d.cluster != nil {
		if _, err := d.cluster.outbox.OutboxBacklog(ctx, d.cluster.Node); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
	} else {
		var err error
		if pending, err = d.opts.Store.PendingDeliveries(ctx); err != nil {
			return err
		}
	}
	if err := d.loadAccounting(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return errors.New("dispatch: Start called twice or after Close")
	}
	d.started = true
	d.wg.Add(1)
	d.mu.Unlock()
	go d.trimLoop()
	if d.cluster != nil {
		d.startCluster()
	}
	for _, p := range pending {
		dl, err := decodeDelivery(p)
		if err != nil {
			d.log.Error("dropping unreadable pending delivery", "id", p.ID, "channel", p.Channel, "error", err)
			d.opts.Store.DeleteDelivery(p.ID)
			continue
		}
		d.enqueue(dl)
	}
	if len(pending) > 0 {
		d.log.Info("resuming pending notifications", "count", len(pending))
	}
	return nil
}

// Close stops delivering: attempts in flight get CloseGrace to finish,
// then are cancelled. Deliveries not done stay in the store for the next
// Start.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stopping)
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d.opts.CloseGrace):
		d.cancel()
		<-done
	}
	d.cancel()
	return nil
}

// AlertEvent makes the dispatcher the alert evaluator's alert.Sink. It
// does not block on delivery.
func (d *Dispatcher) AlertEvent(ev alert.Event) { d.Dispatch(ev) }

// Dispatch routes a and queues one delivery per channel. It returns the
// channel names, sorted, and does not wait for delivery.
//
// The same (event ID, channel) pair is never queued twice, also across a
// crash and restart: the pair is stored in the transaction that stores
// the queued delivery, and no delivery is attempted before that
// transaction committed. An event that reaches no channel is journaled
// under its host ("… reached no notification channel: nobody was told")
// and logged at warn level, except renotifies.
func (d *Dispatcher) Dispatch(a alert.Event) []string {
	d.mu.RLock()
	ok := d.started && !d.closed
	d.mu.RUnlock()
	if !ok {
		d.log.Warn("alert event dropped: dispatcher not running", "host", a.Host, "metric", a.MetricPath, "level", a.Level)
		return nil
	}
	names := d.route(a, d.effectiveLevel(a, true))
	ev := d.event(a)
	ep := episodeOf(ev)
	if len(names) == 0 {
		if a.Replay {
			// Told (or not) before the restart already.
			return nil
		}
		d.noChannel(a, ev, ep)
		return nil
	}
	now := time.Now()
	var fresh []*delivery
	for _, name := range names {
		if !d.acct.claim(ev.ID, name, now) {
			d.log.Debug("notification already queued for this channel; not queued again", "channel", name,
				"host", a.Host, "metric", a.MetricPath, "event_id", ev.ID)
			continue
		}
		e := ev
		e.Channel = name
		fresh = append(fresh, &delivery{id: newID(), channel: name, ev: e, ep: ep, next: now, created: now,
			persisted: make(chan struct{})})
	}
	if len(fresh) == 0 {
		return names
	}
	d.acct.count(ep, func(c *epCount) { c.queued += len(fresh) })
	if d.cluster != nil {
		if !d.queueCluster(a.Batch, ev.ID, ep, fresh) {
			d.acct.count(ep, func(c *epCount) { c.queued -= len(fresh) })
		}
		return names
	}
	if !d.persist(ev.ID, ep, fresh) {
		return names
	}
	for _, dl := range fresh {
		d.enqueue(dl)
	}
	return names
}

// noChannel records that a reached no channel: nobody was told.
func (d *Dispatcher) noChannel(a alert.Event, ev sdk.Event, ep epKey) {
	d.acct.count(ep, func(c *epCount) { c.noChannel = true })
	d.opts.Store.MarkNoChannel(ep)
	if a.Kind == alert.KindRenotify {
		d.log.Debug("alert reminder reached no notification channel", "host", a.Host, "metric", a.MetricPath, "level", a.Level, "event_id", ev.ID)
		return
	}
	d.opts.Store.Journal(a.Host, fmt.Sprintf("%s %s %s reached no notification channel: nobody was told", a.Host, a.MetricPath, a.Level))
	d.log.Warn("alert reached no notification channel: nobody was told", "host", a.Host, "metric", a.MetricPath,
		"level", a.Level, "kind", a.Kind, "event_id", ev.ID)
}

// persistTimeout bounds the wait for the commit of queued deliveries.
const persistTimeout = time.Minute

// persist stores the deliveries of one event, with their (event,
// channel) pairs, in one transaction, in the background; each delivery's
// persisted channel is closed once that is done, and its worker waits for
// it. A pair found already stored marks its delivery dup: it is not
// attempted. It returns false when the dispatcher is closed.
func (d *Dispatcher) persist(eventID string, ep epKey, dls []*delivery) bool {
	rows := make([]dispatchrecord.Delivery, 0, len(dls))
	for _, dl := range dls {
		b, err := json.Marshal(dl.ev)
		if err != nil {
			// A NaN value, say: deliver it, without the restart guarantee.
			d.log.Error("cannot encode notification; it is not resumed after a restart", "channel", dl.channel, "event_id", eventID, "error", err)
			continue
		}
		rows = append(rows, dispatchrecord.Delivery{ID: dl.id, Channel: dl.channel, Event: b, Attempts: dl.attempts, NextAt: dl.next, Created: dl.created})
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
		skipped, err := d.opts.Store.QueueDeliveries(ctx, eventID, ep, rows)
		cancel()
		if err != nil {
			d.log.Error("cannot store notifications; they are delivered but not resumed after a restart", "event_id", eventID, "error", err)
		}
		dups := 0
		for _, dl := range dls {
			if skipped[dl.id] {
				dl.dup = true
				dups++
				d.log.Debug("notification already queued for this channel; not queued again", "channel", dl.channel,
					"host", dl.ev.Host, "metric", dl.ev.MetricPath, "event_id", eventID)
			}
			close(dl.persisted)
		}
		if dups > 0 {
			d.acct.count(ep, func(c *epCount) { c.queued -= dups })
		}
	}()
	return true
}

// event builds the plugin event of a.
func (d *Dispatcher) event(a alert.Event) sdk.Event {
	id := a.ID
	if id == "" {
		id = newID()
	}
	t := a.Time
	if t.IsZero() {
		t = d.opts.Now()
	}
	msg := ""
	switch a.Kind {
	case alert.KindFlapping:
		msg = "flapping: level changes are not notified until it settles"
	case alert.KindRenotify:
		msg = "still " + string(a.Level)
	case alert.KindAcknowledged:
		msg = "acknowledged"
		if a.AckBy != "" {
			msg += " by " + a.AckBy
		}
	}
	if a.Acknowledged && a.Kind != alert.KindAcknowledged {
		msg = joinMsg(msg, "acknowledged")
	}
	// The Text says what the Detail says, in words.
	if a.Text == "" && a.Detail != "" && a.Detail != sdk.FormatValue(a.Value) {
		msg = joinMsg(msg, a.Detail)
	}
	start := a.EpisodeStart
	if start.IsZero() {
		start = a.Since
	}
	cfg := d.opts.Config()
	ev := sdk.Event{
		ID: id, Kind: eventKind(a), Host: a.Host, MetricPath: a.MetricPath, Level: a.Level, PreviousLevel: a.PreviousLevel,
		Value: a.Value, Threshold: a.Threshold, Comparison: a.Comparison, Owner: cfg.Watchhosts[a.Host].Owner,
		Since: a.Since, Time: t, Message: msg, NotificationCount: a.NotificationCount,
		Text: a.Text, EpisodeStart: start,
	}
	public := d.opts.PublicURL
	if public == "" {
		public = cfg.PublicURL
	}
	ev.URL = channels.HostURL(public, a.Host, a.MetricPath)
	return ev
}

// eventKind maps the evaluator's kind to the SDK's.
func eventKind(a alert.Event) sdk.Kind {
	switch a.Kind {
	case alert.KindRenotify:
		return sdk.KindRenotify
	case alert.KindRecovery:
		return sdk.KindResolved
	case alert.KindFlapping:
		return sdk.KindFlapping
	case alert.KindAcknowledged:
		return sdk.KindAcknowledged
	case alert.KindChange:
		if a.Level == level.OK {
			return sdk.KindResolved // settled at OK after flapping
		}
		return sdk.KindFiring
	}
	return ""
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Stats describes the dispatcher for /metrics.
type Stats struct {
	// Pending is the number of queued deliveries per channel.
	Pending map[string]int
	// Queues is the number of channel queues whose worker runs.
	Queues int
	// Delivered, Failed (attempts), GaveUp and Dropped (queue overflow)
	// count deliveries since start.
	Delivered, Failed, GaveUp, Dropped uint64
	// Refused counts alert events not queued because this daemon did not
	// lead (Cluster.Fence said so, or the lease moved on before the
	// commit).
	Refused uint64
}

// Stats returns a snapshot of the counters and queue lengths.
func (d *Dispatcher) Stats() Stats {
	s := Stats{Pending: map[string]int{}, Delivered: d.delivered.Load(), Failed: d.failed.Load(),
		GaveUp: d.gaveUp.Load(), Dropped: d.dropped.Load(), Refused: d.refused.Load()}
	d.mu.RLock()
	s.Queues = len(d.queues)
	qs := make([]*queue, 0, len(d.queues))
	for _, q := range d.queues {
		qs = append(qs, q)
	}
	d.mu.RUnlock()
	for _, q := range qs {
		if n := q.len(); n > 0 {
			s.Pending[q.name] = n
		}
	}
	return s
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

// Interface guards.
var (
	_ alert.Sink       = (*Dispatcher)(nil)
	_ channels.Watcher = (*Dispatcher)(nil)
)
