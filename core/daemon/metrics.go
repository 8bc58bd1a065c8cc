package daemon

import (
	"crypto/subtle"
	"net/http"
	"runtime"
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

// ownMetrics are the families of the daemon itself and of the stored
// values: hbd_build_info and the newest plugin values, capped by
// metrics_max_values as it stands at each scrape.
func (d *Daemon) ownMetrics() []metrics.Family {
	return append([]metrics.Family{
		{Name: "hbd_build_info", Help: "Always 1; the labels name the running hbd's version and Go version.", Labels: []string{"version", "goversion"},
			Collect: func(emit func(float64, ...string)) { emit(1, Version, runtime.Version()) }},
	}, d.Store.ValueMetrics(func() int { return d.Config().MetricsMaxValues })...)
}
