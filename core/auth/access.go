package auth

import (
	"slices"
	"sync"

	"github.com/hbdmon/hbd/core/config"
)

// Role is what a user may do on one host. Each role includes the ones
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
	return [...]string{"none", "monitor", "manager", "owner", "admin"}[r]
}

// HostRoles is the access list of one host.
type HostRoles struct {
	Owner    string
	Managers []string
	Monitors []string
}

func (h HostRoles) clone() HostRoles {
	return HostRoles{Owner: h.Owner, Managers: slices.Clone(h.Managers), Monitors: slices.Clone(h.Monitors)}
}

// roleOf returns user's role in h (never RoleAdmin).
func (h HostRoles) roleOf(user string) Role {
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

// Access is the registry of host access lists: the watchhosts entries of
// the config file, with runtime overrides made through
// PUT /api/0/hosts/:hostname/access. Overrides are kept in memory only:
// Reset (called on SIGHUP) and a restart restore the file's values. It is
// safe for concurrent use.
type Access struct {
	mu   sync.RWMutex
	file map[string]HostRoles
	over map[string]HostRoles
}

// NewAccess returns a registry seeded from cfg's watchhosts.
func NewAccess(cfg *config.Config) *Access {
	a := &Access{}
	a.Reset(cfg)
	return a
}

// Reset replaces the file's values with cfg's and drops every runtime
// override.
func (a *Access) Reset(cfg *config.Config) {
	file := make(map[string]HostRoles, len(cfg.Watchhosts))
	for name, h := range cfg.Watchhosts {
		file[name] = HostRoles{Owner: h.Owner, Managers: slices.Clone(h.Managers), Monitors: slices.Clone(h.Monitors)}
	}
	a.mu.Lock()
	a.file, a.over = file, map[string]HostRoles{}
	a.mu.Unlock()
}

// Roles returns the current access list of host (a copy).
func (a *Access) Roles(host string) HostRoles {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if h, ok := a.over[host]; ok {
		return h.clone()
	}
	return a.file[host].clone()
}

// Lookup returns the current owner, managers and monitors of host; it is
// the api.HostAccessSource the API server reads.
func (a *Access) Lookup(host string) (owner string, managers, monitors []string) {
	h := a.Roles(host)
	return h.Owner, h.Managers, h.Monitors
}

// Set overrides the access list of host until the next Reset.
func (a *Access) Set(host string, h HostRoles) {
	a.mu.Lock()
	a.over[host] = h.clone()
	a.mu.Unlock()
}

// Role returns user's role on host, not counting the admin flag.
func (a *Access) Role(user, host string) Role {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if h, ok := a.over[host]; ok {
		return h.roleOf(user)
	}
	return a.file[host].roleOf(user)
}
