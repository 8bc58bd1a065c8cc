// Package access is hbd's one access policy: who may see, manage and own a
// host or a notification channel, and who is an administrator. It knows
// nothing of HTTP: the API turns a refusal into a status code, the
// WebSocket hub into a skipped message, the dispatcher into a channel that
// is not routed to.
//
// The rules, each answered here and nowhere else:
//   - In open mode (no users configured) every principal is an
//     administrator.
//   - An administrator may do everything on every host and channel.
//   - On a host, each role includes the ones below it:
//     owner ⊃ manager ⊃ monitor. A monitor sees the host's data and
//     alerts (CanSee), a manager also acknowledges and silences them
//     (CanManage), the owner also changes its access list (Owns).
//   - A channel is seen by everyone unless it is private; a private
//     channel only by its owner (and administrators). Only a channel's
//     owner (and administrators) change, delete or test it.
//
// Hosts holds the host access lists (the config's watchhosts with runtime
// overrides); Policy combines it with the config's users.
package access

import (
	"slices"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/config"
)

// Principal is who asks: the caller of a request, the subscriber of a
// WebSocket feed, the creator of a silence, the owner of a channel.
type Principal struct {
	User  string // empty in open mode
	Admin bool
	Open  bool // no users configured: everything is allowed
	// Expires is when the principal's session ends; zero in open mode and
	// for principals that are not a session (PrincipalOf). The live feed
	// closes the connection then.
	Expires time.Time
}

// Role is what a principal may do on one host. Each role includes the ones
// below it: admin ⊃ owner ⊃ manager ⊃ monitor.
type Role int

// Roles, from none to admin.
const (
	RoleNone    Role = iota
	RoleMonitor      // read the host's data and alerts
	RoleManager      // also acknowledge and silence its alerts
	RoleOwner        // also change its access
	RoleAdmin        // everything, on every host
)

func (r Role) String() string {
	if r < RoleNone || r > RoleAdmin {
		return "invalid"
	}
	return [...]string{"none", "monitor", "manager", "owner", "admin"}[r]
}

// HostRoles is the access list of one host.
type HostRoles struct {
	Owner    string
	Managers []string
	Monitors []string
}

// Clone returns a deep copy of h.
func (h HostRoles) Clone() HostRoles {
	return HostRoles{Owner: h.Owner, Managers: slices.Clone(h.Managers), Monitors: slices.Clone(h.Monitors)}
}

// RoleOf returns user's role in h (never RoleAdmin; RoleNone for "").
func (h HostRoles) RoleOf(user string) Role {
	switch {
	case user == "":
		return RoleNone
	case h.Owner == user:
		return RoleOwner
	case slices.Contains(h.Managers, user):
		return RoleManager
	case slices.Contains(h.Monitors, user):
		return RoleMonitor
	}
	return RoleNone
}

// Hosts is the registry of host access lists: the watchhosts entries of
// the config file, with runtime overrides made through
// PUT /api/0/hosts/:hostname/access. Overrides are kept in memory only:
// Reset (called on SIGHUP) and a restart restore the file's values. It is
// safe for concurrent use.
type Hosts struct {
	mu   sync.RWMutex
	file map[string]HostRoles
	over map[string]HostRoles
}

// NewHosts returns a registry seeded from cfg's watchhosts.
func NewHosts(cfg *config.Config) *Hosts {
	h := &Hosts{}
	h.Reset(cfg)
	return h
}

// Reset replaces the file's values with cfg's and drops every runtime
// override.
func (a *Hosts) Reset(cfg *config.Config) {
	file := make(map[string]HostRoles, len(cfg.Watchhosts))
	for name, h := range cfg.Watchhosts {
		file[name] = HostRoles{Owner: h.Owner, Managers: slices.Clone(h.Managers), Monitors: slices.Clone(h.Monitors)}
	}
	a.mu.Lock()
	a.file, a.over = file, map[string]HostRoles{}
	a.mu.Unlock()
}

// Roles returns the current access list of host (a copy).
func (a *Hosts) Roles(host string) HostRoles {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if h, ok := a.over[host]; ok {
		return h.Clone()
	}
	return a.file[host].Clone()
}

// Set overrides the access list of host until the next Reset.
func (a *Hosts) Set(host string, h HostRoles) {
	a.mu.Lock()
	a.over[host] = h.Clone()
	a.mu.Unlock()
}

// role returns user's role on host, not counting the admin flag.
func (a *Hosts) role(user, host string) Role {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if h, ok := a.over[host]; ok {
		return h.RoleOf(user)
	}
	return a.file[host].RoleOf(user)
}

// Channel is what the policy needs to know of a notification channel.
type Channel struct {
	Owner   string // empty when the channel has none (config channels)
	Private bool
}

// Policy answers every access question of hbd. It reads the config in
// force (users, their admin flag, open mode) through a function, so a
// SIGHUP applies at once, and the host access lists from Hosts. It is safe
// for concurrent use.
type Policy struct {
	config func() *config.Config
	hosts  *Hosts
}

// NewPolicy returns the policy of the config cfg returns and the access
// lists of hosts.
func NewPolicy(cfg func() *config.Config, hosts *Hosts) *Policy {
	return &Policy{config: cfg, hosts: hosts}
}

// Hosts returns the host access lists the policy reads.
func (p *Policy) Hosts() *Hosts { return p.hosts }

// HostRoles returns the access list of host in force (a copy): the
// config's, or its runtime override.
func (p *Policy) HostRoles(host string) HostRoles { return p.hosts.Roles(host) }

// PrincipalOf returns the principal of a configured user who is not
// making a request (a silence's creator, a channel's owner, a
// subscriber): their admin flag from the config, open in open mode. ok is
// false for a user that is not configured (outside open mode), whose
// principal may do nothing.
func (p *Policy) PrincipalOf(user string) (pr Principal, ok bool) {
	cfg := p.config()
	if cfg.OpenMode() {
		return Principal{User: user, Admin: true, Open: true}, true
	}
	u, ok := cfg.Users[user]
	if !ok || user == "" {
		return Principal{}, false
	}
	return Principal{User: user, Admin: u.Admin}, true
}

// IsAdmin reports whether pr may do everything: an administrator, or
// anyone in open mode.
func (p *Policy) IsAdmin(pr Principal) bool { return pr.Admin || pr.Open }

// Role returns pr's role on host: RoleAdmin for administrators and in open
// mode, RoleNone for an anonymous principal.
func (p *Policy) Role(pr Principal, host string) Role {
	if p.IsAdmin(pr) {
		return RoleAdmin
	}
	if pr.User == "" {
		return RoleNone
	}
	return p.hosts.role(pr.User, host)
}

// CanSee reports whether pr may read host's data and alerts (monitor or
// above).
func (p *Policy) CanSee(pr Principal, host string) bool { return p.Role(pr, host) >= RoleMonitor }

// CanManage reports whether pr may acknowledge and silence host's alerts
// (manager or above).
func (p *Policy) CanManage(pr Principal, host string) bool {
	return p.Role(pr, host) >= RoleManager
}

// Owns reports whether pr may change host's access list (owner or admin).
func (p *Policy) Owns(pr Principal, host string) bool { return p.Role(pr, host) >= RoleOwner }

// UserCanSee reports whether the configured user may read host's data;
// false for a user that is not configured.
func (p *Policy) UserCanSee(user, host string) bool {
	pr, ok := p.PrincipalOf(user)
	return ok && p.CanSee(pr, host)
}

// UserCanManage reports whether the configured user may acknowledge and
// silence host's alerts; false for a user that is not configured.
func (p *Policy) UserCanManage(user, host string) bool {
	pr, ok := p.PrincipalOf(user)
	return ok && p.CanManage(pr, host)
}

// CanSeeChannel reports whether pr may see ch (list it, subscribe to it):
// public channels, their own private ones, everything for administrators.
func (p *Policy) CanSeeChannel(pr Principal, ch Channel) bool {
	return p.IsAdmin(pr) || !ch.Private || (pr.User != "" && ch.Owner == pr.User)
}

// OwnsChannel reports whether pr may change, delete or test ch.
func (p *Policy) OwnsChannel(pr Principal, ch Channel) bool {
	return p.IsAdmin(pr) || (pr.User != "" && ch.Owner == pr.User)
}
