// Package authrecord holds the persisted forms of package auth: user
// overlays and sessions. Package auth owns them and declares the
// repository interfaces that use them (auth.Repository); storage backends
// (core/store for SQLite) import this leaf package to implement those
// interfaces without importing auth.
package authrecord

import "time"

// UserOverlay is what a user changed about their own account. A nil field
// means "as in the config file".
type UserOverlay struct {
	Name        string
	DisplayName *string
	Email       *string
	Channels    *[]string
	// PasswordHash is the bcrypt hash the user chose ("" for none). It is
	// only in force while the config file still holds BaseHash, the hash
	// that was configured when the user changed their password: an operator
	// who resets the password in the file overrides the user's choice.
	PasswordHash string
	BaseHash     string
	Updated      time.Time
}

// Session is one login. Hash is the hex SHA-256 of the token: the token
// itself is never stored, so a copy of the database opens no session.
type Session struct {
	Hash     string
	User     string
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time
	Client   string
}
