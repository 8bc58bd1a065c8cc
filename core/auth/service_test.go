package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/auth"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
)

func newService(t *testing.T, cfg *config.Config, now func() time.Time) *auth.Service {
	t.Helper()
	svc, err := auth.New(context.Background(), auth.Options{
		Store: testutil.Store(t, 10), Config: cfg, Now: now, BcryptCost: bcrypt.MinCost,
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func usersConfig(t *testing.T) *config.Config {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("olga-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Config{
		Auth: config.Auth{SessionTTL: time.Hour, MinPasswordLength: 8},
		Users: map[string]config.User{
			"olga": {PasswordHash: string(hash)},
			"mia":  {PasswordHash: string(hash)},
		},
		Watchhosts: map[string]config.WatchHost{"web01": {Owner: "olga"}},
	}
}

// The service answers in its own terms: a token and a principal, and
// errors whose kind says what went wrong, with no HTTP in sight.
func TestLoginAuthenticateLogoutSpeakDomainTerms(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	svc := newService(t, usersConfig(t), func() time.Time { return now })
	ctx := context.Background()

	for _, tc := range []struct {
		c    auth.Credentials
		kind error
	}{
		{auth.Credentials{Username: "olga", Password: "wrong", Client: "192.0.2.1"}, auth.ErrUnauthenticated},
		{auth.Credentials{Username: "nobody", Password: "wrong", Client: "192.0.2.1"}, auth.ErrUnauthenticated},
		{auth.Credentials{Username: "olga", Password: "olga-password", Client: "192.0.2.1", CrossSite: true}, auth.ErrForbidden},
	} {
		var ae *auth.Error
		if _, err := svc.Login(ctx, tc.c); !errors.Is(err, tc.kind) || !errors.As(err, &ae) || ae.Msg == "" {
			t.Errorf("Login(%s, cross-site %v) = %v, want kind %v", tc.c.Username, tc.c.CrossSite, err, tc.kind)
		}
	}
	se, err := svc.Login(ctx, auth.Credentials{Username: "olga", Password: "olga-password", Client: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if se.Lifetime != time.Hour || !se.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("session %+v", se)
	}
	p, ok := svc.Authenticate(se.Token, "192.0.2.1")
	if !ok || p.User != "olga" || p.Admin || p.Open || !p.Expires.Equal(se.Expires) {
		t.Fatalf("Authenticate = %+v %v", p, ok)
	}
	me, err := svc.Me(p, se.Token)
	if err != nil || me.Name != "olga" || me.CSRFToken != auth.CSRFToken(se.Token) || !me.SessionExpires.Equal(se.Expires) {
		t.Fatalf("Me = %+v %v", me, err)
	}
	if me, _ := svc.Me(p, ""); me.CSRFToken != "" || !me.SessionExpires.IsZero() {
		t.Fatalf("Me without the session's token tells its CSRF token: %+v", me)
	}
	if err := svc.Logout(ctx, se.Token); err != nil {
		t.Fatal(err)
	}
	if p, ok := svc.Authenticate(se.Token, "192.0.2.1"); ok || p != (access.Principal{}) {
		t.Fatalf("after logout: %+v %v", p, ok)
	}

	open := newService(t, &config.Config{}, nil)
	if _, err := open.Login(ctx, auth.Credentials{Username: "olga", Password: "x"}); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("login in open mode: %v", err)
	}
}

// Wrong current passwords are throttled like logins: the sixth in a row is
// refused with the time to wait.
func TestPasswordChangeIsThrottled(t *testing.T) {
	svc := newService(t, usersConfig(t), nil)
	olga := access.Principal{User: "olga"}
	wrong, next := "wrong", "long-enough-1"
	var err error
	for i := 0; i < 6; i++ {
		_, err = svc.UpdateMe(context.Background(), olga, "", auth.ProfileUpdate{CurrentPassword: &wrong, NewPassword: &next})
		if i < 5 && !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	var te *auth.ThrottledError
	if !errors.As(err, &te) || te.RetrySeconds() != 30 {
		t.Fatalf("sixth attempt: %v", err)
	}
}

// Host access changes go to the policy's host lists, only from the host's
// owner or an administrator, naming configured users, until Reload.
func TestSetAccessChangesThePolicyUntilReload(t *testing.T) {
	cfg := usersConfig(t)
	policy := access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg))
	svc, err := auth.New(context.Background(), auth.Options{Store: testutil.Store(t, 10), Config: cfg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Policy() != policy {
		t.Fatal("the service does not use the policy it was given")
	}
	ctx := context.Background()
	olga, mia := access.Principal{User: "olga"}, access.Principal{User: "mia"}
	managers := []string{"mia"}
	if _, err := svc.SetAccess(ctx, mia, "web01", auth.AccessChange{Managers: &managers}); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("a non-owner changed the access: %v", err)
	}
	ghost := []string{"ghost"}
	if _, err := svc.SetAccess(ctx, olga, "web01", auth.AccessChange{Monitors: &ghost}); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("an unknown user was accepted: %v", err)
	}
	h, err := svc.SetAccess(ctx, olga, "web01", auth.AccessChange{Managers: &managers})
	if err != nil || h.Owner != "olga" || len(h.Managers) != 1 {
		t.Fatalf("SetAccess = %+v %v", h, err)
	}
	if !policy.CanManage(mia, "web01") {
		t.Fatal("the policy does not see the change")
	}
	svc.Reload(cfg)
	if policy.CanManage(mia, "web01") {
		t.Fatal("Reload kept the runtime change")
	}
}
