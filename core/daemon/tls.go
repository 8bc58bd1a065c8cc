package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/hbdmon/hbd/core/config"
)

// httpsCert holds the certificate of hbd_port when tls_cert is set; a
// SIGHUP reload swaps it without dropping connections.
type httpsCert struct {
	cur atomic.Pointer[tls.Certificate]
}

func (h *httpsCert) load(cfg *config.Config) error {
	certFile, keyFile := cfg.TLSFiles()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert: load %s and %s: %w", certFile, keyFile, err)
	}
	h.cur.Store(&cert)
	return nil
}

func (h *httpsCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cur.Load(), nil }

// serveTLS wraps the HTTP listener in TLS when the config asks for HTTPS,
// and reloads the certificate on every successful reload (a bad new
// certificate keeps the old one, logged and journaled).
func (d *Daemon) serveTLS(ln net.Listener, cfg *config.Config) (net.Listener, error) {
	if cert, _ := cfg.TLSFiles(); cert == "" {
		return ln, nil
	}
	hc := &httpsCert{}
	if err := hc.load(cfg); err != nil {
		return nil, err
	}
	d.tls = true
	d.OnReload(func(c *config.Config) {
		if cert, _ := c.TLSFiles(); cert == "" {
			d.log.Warn("tls_cert removed from the config: hbd_port keeps serving HTTPS until restart")
			return
		}
		if err := hc.load(c); err != nil {
			d.log.Error("certificate reload failed; keeping the previous one", "error", err)
			d.Store.Journal("", "certificate reload failed: "+err.Error())
			return
		}
		d.log.Info("certificate reloaded")
	})
	return tls.NewListener(ln, &tls.Config{GetCertificate: hc.get, MinVersion: tls.VersionTLS12}), nil
}
