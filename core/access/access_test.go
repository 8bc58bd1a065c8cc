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
