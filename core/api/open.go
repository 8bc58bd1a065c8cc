package api

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Open mode has no login to stop a hostile page in the operator's browser,
// so the guard refuses two browser attacks instead:
//   - cross-site writes (CSRF): a write must not name a foreign Origin and
//     must send its body as JSON (which a cross-site form cannot do
//     without a CORS preflight, which hbd never grants);
//   - DNS rebinding: a request whose Host is not one of the daemon's own
//     names or addresses, or one listed in allowed_hosts, is refused, so a
//     page of evil.example that re-points its name at the daemon's address
//     gets nothing.

var (
	errForeignOrigin = errors.New("the Origin header names another site: cross-site writes are refused")
	errNotJSON       = errors.New("a write must send its body as Content-Type: application/json")
	errForeignHost   = errors.New("the Host header names neither this daemon nor an entry of allowed_hosts")
)

// checkOpen checks a request served in open mode; see above. Agent routes
// (signed ingestion) are not browser requests and are not checked.
func (s *Server) checkOpen(r *http.Request) error {
	if !s.hostAllowed(r.Host) {
		return errForeignHost
	}
	if !unsafeMethod(r.Method) {
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		return errForeignOrigin
	}
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return errNotJSON
		}
	}
	return nil
}

// hostAllowed reports whether the Host header names this daemon: a
// loopback name or address, the machine's host name, an address of one of
// its interfaces, hbd_host, or an allowed_hosts entry ("*" allows any).
func (s *Server) hostAllowed(hostHeader string) bool {
	if hostHeader == "" {
		return true
	}
	h := hostHeader
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	cfg := s.deps.Config()
	for _, a := range cfg.AllowedHosts {
		if a == "*" || strings.TrimSuffix(strings.ToLower(a), ".") == h {
			return true
		}
	}
	if h == strings.ToLower(cfg.HBDHost) {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		return ownAddrs()[ip.String()]
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || ownNames()[h]
}

var (
	ownOnce  sync.Once
	ownIPs   map[string]bool
	ownHosts map[string]bool
)

func loadOwn() {
	ownIPs, ownHosts = map[string]bool{}, map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ownIPs[n.IP.String()] = true
			}
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		name = strings.ToLower(name)
		ownHosts[name] = true
		if short, _, ok := strings.Cut(name, "."); ok {
			ownHosts[short] = true
		}
	}
}

func ownAddrs() map[string]bool { ownOnce.Do(loadOwn); return ownIPs }
func ownNames() map[string]bool { ownOnce.Do(loadOwn); return ownHosts }
