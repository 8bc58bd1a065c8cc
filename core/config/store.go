package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Store drivers (the store.driver key).
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// MaxSecretFileBytes bounds store.dsn_file and store.password_file.
const MaxSecretFileBytes = 64 << 10

// Store selects where the daemon keeps its data (the store key):
//
//	store:
//	  driver: postgres            # sqlite (default: data_dir/hbd.db) or postgres
//	  dsn: "postgres://hbd@db.example.net:5432/hbd?sslmode=verify-full"
//	  # or dsn_file: /etc/hbd/dsn (the whole connection string, one line)
//	  password_file: /etc/hbd/pgpass   # optional: the password alone
//
// The DSN is a secret (it may hold a password): it never prints. It can
// also come from the environment (HBD_STORE__DSN), and the password from
// PGPASSWORD or a .pgpass file, as with libpq.
type Store struct {
	Driver       string `koanf:"driver"`
	DSN          Secret `koanf:"dsn"`
	DSNFile      string `koanf:"dsn_file"`
	PasswordFile string `koanf:"password_file"`
}

// Postgres reports whether the store is PostgreSQL.
func (s Store) Postgres() bool { return s.Driver == StorePostgres }

// Connection returns the PostgreSQL connection string (from dsn or
// dsn_file) and the password from password_file ("" when unset). The
// files are read on every call, so a rotated password is used at the
// next start. Errors name the key, never the contents.
func (s Store) Connection() (dsn, password Secret, err error) {
	dsn = s.DSN
	if s.DSNFile != "" {
		b, err := readSecretFile("store.dsn_file", s.DSNFile)
		if err != nil {
			return "", "", err
		}
		dsn = Secret(b)
	}
	if s.PasswordFile != "" {
		b, err := readSecretFile("store.password_file", s.PasswordFile)
		if err != nil {
			return "", "", err
		}
		password = Secret(b)
	}
	return dsn, password, nil
}

func readSecretFile(key, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", &Error{Key: key, Msg: fmt.Sprintf("cannot read %s: %v", path, unwrapPathErr(err))}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return "", &Error{Key: key, Msg: fmt.Sprintf("cannot read %s: %v", path, unwrapPathErr(err))}
	}
	if len(b) > MaxSecretFileBytes {
		return "", &Error{Key: key, Msg: fmt.Sprintf("%s is larger than %d bytes", path, MaxSecretFileBytes)}
	}
	v := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", &Error{Key: key, Msg: fmt.Sprintf("%s is empty", path)}
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", &Error{Key: key, Msg: fmt.Sprintf("%s must hold one line", path)}
	}
	return v, nil
}

// validateStore checks the store keys; it reads the secret files, so a
// missing or empty one is reported by check-config, not at start.
func (c *Config) validateStore() error {
	s := &c.Store
	bad := func(key, format string, a ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	switch s.Driver {
	case "":
		s.Driver = StoreSQLite
	case StoreSQLite, StorePostgres:
	default:
		return bad("store.driver", "must be sqlite or postgres, got %q", s.Driver)
	}
	if !s.Postgres() {
		for _, k := range []struct{ key, v string }{{"store.dsn", string(s.DSN)}, {"store.dsn_file", s.DSNFile}, {"store.password_file", s.PasswordFile}} {
			if k.v != "" {
				return bad(k.key, "only for store.driver postgres (the sqlite store is data_dir/hbd.db)")
			}
		}
		return nil
	}
	switch {
	case s.DSN == "" && s.DSNFile == "":
		return bad("store.dsn", "required with store.driver postgres (or store.dsn_file, or HBD_STORE__DSN in the environment)")
	case s.DSN != "" && s.DSNFile != "":
		return bad("store.dsn_file", "store.dsn and store.dsn_file are exclusive: set one")
	}
	dsn, _, err := s.Connection()
	if err != nil {
		return err
	}
	if strings.ContainsAny(string(dsn), "\r\n\x00") {
		return bad("store.dsn", "must be one line")
	}
	for _, f := range []struct{ key, path string }{{"store.dsn_file", s.DSNFile}, {"store.password_file", s.PasswordFile}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err == nil && st.Mode().Perm()&0o077 != 0 {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is readable by other users (mode %v): it holds a secret, chmod 600 it", f.key, f.path, st.Mode().Perm()))
		}
	}
	return nil
}
