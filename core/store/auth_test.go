package store

import (
	"context"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/auth/authrecord"
)

func TestUserOverlayRoundTripsAndSurvivesReopen(t *testing.T) {
	forBackends(t, testUserOverlayRoundTripsAndSurvivesReopen)
}

func testUserOverlayRoundTripsAndSurvivesReopen(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dn, em := "Alice A.", ""
	chans := []string{"ops", "pager"}
	now := time.Unix(1_700_000_000, 0)
	if err := s.PutUserOverlay(ctx, authrecord.UserOverlay{Name: "alice", DisplayName: &dn, Email: &em, Channels: &chans, Updated: now}); err != nil {
		t.Fatal(err)
	}
	empty := []string{}
	if err := s.PutUserOverlay(ctx, authrecord.UserOverlay{Name: "bob", Channels: &empty, PasswordHash: "h2", BaseHash: "h1", Updated: now}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = be.openAt(t, dir, 0)
	got, err := s.UserOverlays(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := got["alice"], got["bob"]
	if a.DisplayName == nil || *a.DisplayName != dn || a.Email == nil || *a.Email != "" || a.Channels == nil || len(*a.Channels) != 2 || a.PasswordHash != "" {
		t.Fatalf("alice = %+v", a)
	}
	if !a.Updated.Equal(now) {
		t.Fatalf("updated = %v, want %v", a.Updated, now)
	}
	if b.DisplayName != nil || b.Email != nil || b.Channels == nil || len(*b.Channels) != 0 || b.PasswordHash != "h2" || b.BaseHash != "h1" {
		t.Fatalf("bob = %+v", b)
	}
}

func TestSessionsExpireAndAreDeletedByUserOrHash(t *testing.T) {
	forBackends(t, testSessionsExpireAndAreDeletedByUserOrHash)
}

func testSessionsExpireAndAreDeletedByUserOrHash(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for _, se := range []authrecord.Session{
		{Hash: "a1", User: "alice", Created: now, Expires: now.Add(time.Hour), LastUsed: now, Client: "127.0.0.1"},
		{Hash: "a2", User: "alice", Created: now, Expires: now.Add(time.Hour), LastUsed: now},
		{Hash: "a3", User: "alice", Created: now, Expires: now.Add(time.Hour), LastUsed: now},
		{Hash: "b1", User: "bob", Created: now, Expires: now.Add(time.Hour), LastUsed: now},
		{Hash: "old", User: "bob", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), LastUsed: now},
	} {
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, authrecord.Session{Hash: "a1", User: "x", Created: now, Expires: now, LastUsed: now}); err == nil {
		t.Fatal("duplicate token hash accepted")
	}
	s.TouchSession("a1", now.Add(time.Minute), "::1")
	s.DeleteExpiredSessions(now)
	s.Close()

	s = be.openAt(t, dir, 0)
	list, err := s.Sessions(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("sessions after reopen = %+v", list)
	}
	if list[0].Hash != "a1" || list[0].Client != "::1" || !list[0].LastUsed.Equal(now.Add(time.Minute)) {
		t.Fatalf("touch not stored: %+v", list[0])
	}
	pw := authrecord.UserOverlay{Name: "alice", PasswordHash: "new", BaseHash: "old", Updated: now}
	if err := s.ChangePassword(ctx, pw, "a2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSessions(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Sessions(ctx, now)
	if len(list) != 1 || list[0].Hash != "a2" {
		t.Fatalf("after password change and delete: %+v", list)
	}
	if err := s.DeleteUserSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.Sessions(ctx, now); len(list) != 0 {
		t.Fatalf("after user delete: %+v", list)
	}
	if list, _ = s.Sessions(ctx, now.Add(-90*time.Minute)); len(list) != 0 {
		t.Fatalf("expired row not purged: %+v", list)
	}
}
