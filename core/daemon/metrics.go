package daemon

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/metrics"
)

// metricsRoute serves /metrics to administrators, to anyone in open mode,
// and to scrapers presenting metrics_token as a bearer token.
func (d *Daemon) metricsRoute(reg *metrics.Registry) api.Route {
	h := echo.WrapHandler(reg.Handler())
	return api.Route{Method: http.MethodGet, Path: "/metrics", Access: api.Public, Handler: func(c echo.Context) error {
		tok := d.Config().MetricsToken
		bearer, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if tok != "" && ok && subtle.ConstantTimeCompare([]byte(bearer), tok.Bytes()) == 1 {
			return h(c)
		}
		if _, err := d.API.Guard().Check(c, api.Route{Method: http.MethodGet, Path: "/metrics", Access: api.Admin}); err != nil {
			return err
		}
		return h(c)
	}}
}
