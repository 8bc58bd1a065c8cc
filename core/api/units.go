package api

import (
	"context"

	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
)

// UnitStore keeps the units agents declare for their plugins' metrics
// (protocol.Units). *store.Store implements it; a storage without it
// serves no units ("units": {}) and ignores the declared ones.
type UnitStore interface {
	// SetUnits records a host's declared units, plugin -> key -> unit,
	// writing only what changed; it returns once committed.
	SetUnits(ctx context.Context, host string, units protocol.Units) error
	// Units returns a host's declared units, plugin -> key -> unit; nil
	// when none.
	Units(ctx context.Context, host string) (map[string]map[string]string, error)
}

func (s *Server) unitStore() UnitStore {
	u, _ := s.deps.Store.(UnitStore)
	return u
}

// hostUnits returns the declared units of a host's plugins, or nil (no
// unit store, none declared, or a read error: units are an extra, the
// answer goes out without them).
func (s *Server) hostUnits(ctx context.Context, host string) map[string]map[string]string {
	us := s.unitStore()
	if us == nil {
		return nil
	}
	u, err := us.Units(ctx, host)
	if err != nil {
		s.log.Warn("cannot read plugin units", "host", host, "error", err)
		return nil
	}
	return u
}

// metricUnits resolves the unit of each path of a plugin's samples into
// out, keyed by the metric path ("plugin.path", as "thresholds" is).
// Paths without a declared unit are left out.
func metricUnits(out map[string]string, plugin string, declared map[string]string, samples ...store.Sample) {
	if len(declared) == 0 {
		return
	}
	for _, smp := range samples {
		for _, p := range smp.Paths {
			full := plugin + "." + p
			if _, done := out[full]; done {
				continue
			}
			if u, ok := protocol.UnitOf(declared, p); ok {
				out[full] = u
			}
		}
	}
}
