package api_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/auth/authtest"
)

// TestAccessMatrix sends every route registered by api.New as every role,
// in auth mode and open mode, and checks the guard's answer (see
// authtest.AccessMatrix). Feature packages that add routes with
// Server.Add run the same matrix on a server with their routes.
func TestAccessMatrix(t *testing.T) {
	for _, mode := range []string{"auth", "open"} {
		t.Run(mode, func(t *testing.T) {
			env := authtest.New(t, authtest.Config(mode == "open"))
			if n := len(env.API.Routes()); n < 10 {
				t.Fatalf("only %d routes registered", n)
			}
			authtest.AccessMatrix(t, env)
		})
	}
}

// TestAccessMatrixCoversAddedRoutes checks that routes added after New,
// with every access level, go through the same guard.
func TestAccessMatrixCoversAddedRoutes(t *testing.T) {
	ok := func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]bool{"ok": true}) }
	for _, mode := range []string{"auth", "open"} {
		t.Run(mode, func(t *testing.T) {
			env := authtest.New(t, authtest.Config(mode == "open"))
			env.API.Add(
				api.Route{Method: http.MethodGet, Path: "/test/page", Access: api.Authenticated, HTML: true, Handler: ok},
				api.Route{Method: http.MethodGet, Path: "/test/admin-page", Access: api.Admin, HTML: true, Handler: ok},
				api.Route{Method: http.MethodPost, Path: "/api/0/test/hosts/:hostname/ack", Access: api.HostManager, Handler: ok},
				api.Route{Method: http.MethodDelete, Path: "/api/0/test/hosts/:hostname/thing/:id", Access: api.HostOwner, Handler: ok},
				api.Route{Method: http.MethodPatch, Path: "/api/0/test/admin", Access: api.Admin, Handler: ok},
				api.Route{Method: http.MethodGet, Path: "/api/0/test/unknown-level", Access: api.Access(99), Handler: ok},
			)
			authtest.AccessMatrix(t, env)
		})
	}
}
