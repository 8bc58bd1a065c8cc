package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Disk full gave agents a generic 500 while /healthz said ok (issue 10).
// A write that fails because the database cannot be written (SQLite's
// max_page_count stands in for a full disk) is an ErrStorage, and Health
// reports it until a write commits again.
func TestFullDatabaseIsAStorageFailure(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Health(); err != nil {
		t.Fatalf("fresh store unhealthy: %v", err)
	}
	var pages int
	if err := s.wdb.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 2000 && werr == nil; i++ {
		werr = s.JournalSync(ctx, "web01", strings.Repeat("x", 1500))
	}
	if !errors.Is(werr, ErrStorage) {
		t.Fatalf("writing into a full database: %v, want ErrStorage", werr)
	}
	if err := s.Health(); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Health = %v, want the storage failure", err)
	}
	if _, err := s.wdb.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if err := s.JournalSync(ctx, "web01", "room again"); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a commit = %v", err)
	}
}
