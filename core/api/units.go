package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

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
// Paths without a declared unit are left out. (The answers write the same
// with appendUnits, without the map.)
func metricUnits(out map[string]string, plugin string, declared map[string]string, samples ...store.Sample) {
	if len(declared) == 0 {
		return
	}
	for _, smp := range samples {
		for _, p := range smp.Paths {
			if u, ok := protocol.UnitOf(declared, p); ok {
				out[plugin+"."+p] = u
			}
		}
	}
}

// appendUnits appends the "units" object of the plugin answers: what
// encoding/json writes for the map metricUnits builds from the paths of
// each plugin in names (sorted), byte for byte, without the map. Plugin
// names sort before their paths ("." is below every byte of a valid
// name), so the members come out in the map's key order; names that
// would break that, and unsorted paths, take the map route.
func appendUnits(b []byte, names []string, paths func(string) []string, declared map[string]map[string]string) []byte {
	if len(declared) == 0 {
		return append(b, "{}"...)
	}
	for _, name := range names {
		if strings.IndexFunc(name, func(r rune) bool { return r <= '.' }) >= 0 || !slices.IsSorted(paths(name)) {
			return appendUnitsMap(b, names, paths, declared)
		}
	}
	b = append(b, '{')
	first := true
	for _, name := range names {
		units := declared[name]
		if len(units) == 0 {
			continue
		}
		for _, p := range paths(name) {
			u, ok := protocol.UnitOf(units, p)
			if !ok {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			if plainJSON(name) && plainJSON(p) {
				b = append(b, '"')
				b = append(b, name...)
				b = append(b, '.')
				b = append(b, p...)
				b = append(b, '"')
			} else {
				b = appendJSONString(b, name+"."+p)
			}
			b = append(b, ':')
			b = appendJSONString(b, u)
		}
	}
	return append(b, '}')
}

func appendUnitsMap(b []byte, names []string, paths func(string) []string, declared map[string]map[string]string) []byte {
	out := map[string]string{}
	for _, name := range names {
		metricUnits(out, name, declared[name], store.Sample{Paths: paths(name)})
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return append(b, "{}"...)
	}
	return append(b, enc...)
}

// plainJSON reports whether encoding/json writes s as it is, in quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// pathUnion is the sorted set of paths of samples (usually one set they
// all share).
func pathUnion(samples []store.Sample) []string {
	if len(samples) == 0 {
		return nil
	}
	first := samples[0].Paths
	same := true
	for _, smp := range samples[1:] {
		if !slices.Equal(smp.Paths, first) {
			same = false
			break
		}
	}
	if same && slices.IsSorted(first) {
		return first
	}
	set := map[string]bool{}
	for _, smp := range samples {
		for _, p := range smp.Paths {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
