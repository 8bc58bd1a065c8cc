package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// NotifierPluginJSON is one entry of GET /api/0/notifier_plugins: a binary
// in plugins_dir and what became of it.
type NotifierPluginJSON struct {
	Binary string `json:"binary"`
	// Type is the channel type it registered ("" until it did).
	Type string `json:"type"`
	// State is "running", "restarting" (it died and is being restarted),
	// "failing" (it does not start; see Error) or "refused" (it is not run
	// until the file, its pin or the conflict changes; see Error).
	State string `json:"state"`
	// Error is the first useful line of why it fails or is refused.
	Error string `json:"error"`
	// Failures counts the failed starts since it last ran; FailingSince
	// (RFC 3339, or null) is when the first of them happened.
	Failures     int     `json:"failures"`
	FailingSince *string `json:"failing_since"`
	// Restarts counts restarts after a crash.
	Restarts int `json:"restarts"`
	// Protocol is the notifier protocol version the running process
	// speaks (0 when not running).
	Protocol int `json:"protocol"`
}

// NotifierPlugins reports the plugin binaries; the daemon adapts the
// plugin host to it.
type NotifierPlugins interface {
	NotifierPlugins() []NotifierPluginJSON
}

// AddNotifierPlugins registers GET /api/0/notifier_plugins (admins only:
// the errors quote plugin output and paths).
func (s *Server) AddNotifierPlugins(p NotifierPlugins) {
	s.Add(Route{Method: http.MethodGet, Path: "/api/0/notifier_plugins", Access: Admin, Handler: func(c echo.Context) error {
		out := p.NotifierPlugins()
		if out == nil {
			out = []NotifierPluginJSON{}
		}
		return c.JSON(http.StatusOK, out)
	}})
}
