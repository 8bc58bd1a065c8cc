package access

import (
	"testing"

	"github.com/hbdmon/hbd/core/config"
)

func testPolicy(users map[string]config.User) (*Policy, *config.Config) {
	cfg := &config.Config{
		Users: users,
		Watchhosts: map[string]config.WatchHost{
			"web": {Owner: "olga", Managers: []string{"max"}, Monitors: []string{"mia"}},
		},
	}
	return NewPolicy(func() *config.Config { return cfg }, NewHosts(cfg)), cfg
}

func TestHostRolesIncludeTheOnesBelow(t *testing.T) {
	p, _ := testPolicy(map[string]config.User{"olga": {}, "max": {}, "mia": {}, "eve": {}, "root": {Admin: true}})
	for _, tc := range []struct {
		user                    string
		see, manage, own, admin bool
	}{
		{"root", true, true, true, true},
		{"olga", true, true, true, false},
		{"max", true, true, false, false},
		{"mia", true, false, false, false},
		{"eve", false, false, false, false},
		{"ghost", false, false, false, false}, // not configured
		{"", false, false, false, false},
	} {
		pr, ok := p.PrincipalOf(tc.user)
		if ok != (tc.user != "" && tc.user != "ghost") {
			t.Errorf("PrincipalOf(%q) ok = %v", tc.user, ok)
		}
		if got := p.CanSee(pr, "web"); got != tc.see {
			t.Errorf("%s CanSee = %v", tc.user, got)
		}
		if got := p.UserCanSee(tc.user, "web"); got != tc.see {
			t.Errorf("%s UserCanSee = %v", tc.user, got)
		}
		if got := p.CanManage(pr, "web"); got != tc.manage {
			t.Errorf("%s CanManage = %v", tc.user, got)
		}
		if got := p.UserCanManage(tc.user, "web"); got != tc.manage {
			t.Errorf("%s UserCanManage = %v", tc.user, got)
		}
		if got := p.Owns(pr, "web"); got != tc.own {
			t.Errorf("%s Owns = %v", tc.user, got)
		}
		if got := p.IsAdmin(pr); got != tc.admin {
			t.Errorf("%s IsAdmin = %v", tc.user, got)
		}
		// Only an administrator has a role on a host nobody listed.
		if got := p.CanSee(pr, "db"); got != tc.admin {
			t.Errorf("%s CanSee(db) = %v", tc.user, got)
		}
	}
}

func TestOpenModeMakesEveryoneAdmin(t *testing.T) {
	p, _ := testPolicy(nil)
	pr, ok := p.PrincipalOf("anyone")
	if !ok || !pr.Open || !p.IsAdmin(pr) || !p.Owns(pr, "web") || !p.CanManage(pr, "unknown") {
		t.Fatalf("open mode principal %+v ok=%v", pr, ok)
	}
	if !p.CanSee(Principal{Open: true}, "x") {
		t.Fatal("an open principal without a name sees every host")
	}
}

func TestRuntimeOverridesApplyUntilReset(t *testing.T) {
	p, cfg := testPolicy(map[string]config.User{"olga": {}, "mia": {}})
	mia := Principal{User: "mia"}
	p.Hosts().Set("web", HostRoles{Owner: "olga", Managers: []string{"mia"}})
	if !p.CanManage(mia, "web") {
		t.Fatal("override making mia a manager is not applied")
	}
	roles := p.Hosts().Roles("web")
	roles.Managers[0] = "changed"
	if !p.CanManage(mia, "web") {
		t.Fatal("Roles must return a copy")
	}
	p.Hosts().Reset(cfg)
	if p.CanManage(mia, "web") || !p.CanSee(mia, "web") {
		t.Fatal("Reset must restore the file's access list")
	}
}

func TestChannelsArePublicUnlessPrivate(t *testing.T) {
	p, _ := testPolicy(map[string]config.User{"olga": {}, "mia": {}, "root": {Admin: true}})
	olga, mia, root := Principal{User: "olga"}, Principal{User: "mia"}, Principal{User: "root", Admin: true}
	private := Channel{Owner: "olga", Private: true}
	public := Channel{Owner: "olga"}
	shared := Channel{} // a config channel: no owner
	for _, tc := range []struct {
		name     string
		pr       Principal
		ch       Channel
		see, own bool
	}{
		{"owner private", olga, private, true, true},
		{"other private", mia, private, false, false},
		{"admin private", root, private, true, true},
		{"other public", mia, public, true, false},
		{"config channel", mia, shared, true, false},
		{"config channel admin", root, shared, true, true},
		{"anonymous", Principal{}, private, false, false},
	} {
		if got := p.CanSeeChannel(tc.pr, tc.ch); got != tc.see {
			t.Errorf("%s: CanSeeChannel = %v", tc.name, got)
		}
		if got := p.OwnsChannel(tc.pr, tc.ch); got != tc.own {
			t.Errorf("%s: OwnsChannel = %v", tc.name, got)
		}
	}
}

func TestRoleNamesAreReadable(t *testing.T) {
	if RoleManager.String() != "manager" || Role(99).String() != "invalid" {
		t.Fatal(RoleManager.String(), Role(99).String())
	}
}

// The host access lists, read without the admin flag: roles nest, Roles
// returns copies, overrides (also of hosts outside watchhosts) hold until
// Reset.
func TestAccessRolesNestAndOverridesResetOnReload(t *testing.T) {
	cfg := &config.Config{Watchhosts: map[string]config.WatchHost{
		"web01": {Owner: "olga", Managers: []string{"max"}, Monitors: []string{"mia", "max"}},
	}}
	a := NewHosts(cfg)
	for user, want := range map[string]Role{"olga": RoleOwner, "max": RoleManager, "mia": RoleMonitor, "eve": RoleNone, "": RoleNone} {
		if got := a.role(user, "web01"); got != want {
			t.Errorf("Role(%s) = %s, want %s", user, got, want)
		}
	}
	if a.role("olga", "db01") != RoleNone {
		t.Error("role on a host without access list")
	}
	p := NewPolicy(func() *config.Config { return cfg }, a)
	h := p.HostRoles("web01")
	h.Managers[0] = "mutated"
	if m := a.Roles("web01").Managers; h.Owner != "olga" || m[0] != "max" || len(h.Monitors) != 2 {
		t.Fatal("HostRoles shares its slices")
	}
	a.Set("web01", HostRoles{Monitors: []string{"eve"}})
	if a.role("eve", "web01") != RoleMonitor || a.role("olga", "web01") != RoleNone {
		t.Fatal("override not in force")
	}
	a.Set("dyn-host", HostRoles{Owner: "eve"})
	if a.role("eve", "dyn-host") != RoleOwner {
		t.Fatal("override of a host outside watchhosts")
	}
	a.Reset(cfg)
	if a.role("eve", "web01") != RoleNone || a.role("olga", "web01") != RoleOwner || a.role("eve", "dyn-host") != RoleNone {
		t.Fatal("Reset kept overrides")
	}
}

// Role counts the principal's admin and open flags, not whether the user
// is configured: a session's principal carries the flags it was given.
func TestHostRoleOfPrincipals(t *testing.T) {
	cfg := &config.Config{Watchhosts: map[string]config.WatchHost{"web01": {Managers: []string{"max"}}}}
	p := NewPolicy(func() *config.Config { return cfg }, NewHosts(cfg))
	for _, tc := range []struct {
		p    Principal
		want Role
	}{
		{Principal{Open: true, Admin: true}, RoleAdmin},
		{Principal{User: "root", Admin: true}, RoleAdmin},
		{Principal{User: "max"}, RoleManager},
		{Principal{User: "eve"}, RoleNone},
		{Principal{}, RoleNone},
	} {
		if got := p.Role(tc.p, "web01"); got != tc.want {
			t.Errorf("Role(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}
