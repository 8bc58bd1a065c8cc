package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hbdmon/hbd/core/testutil"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial to dir/name.pem and dir/name.key and returns it.
func writeCert(t *testing.T, dir, name string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "hbd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hbd_port serves HTTPS with tls_cert/tls_key: logins and tokens no longer
// travel in clear, the session cookie is Secure, and a SIGHUP reloads the
// certificate.
func TestHTTPSOnHBDPort(t *testing.T) {
	bin := testutil.Build(t, "./core/cmd/hbd")
	dir := t.TempDir()
	port := testutil.FreePort(t)
	first := writeCert(t, dir, "one", 1)
	second := writeCert(t, dir, "two", 2)
	hash, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	writeConfig(t, dir, port, fmt.Sprintf("users:\n  root: {password_hash: %q, admin: true}\ntls_cert: one.pem\ntls_key: one.key\ncert_path: %s\n", hash, dir))
	cmd := exec.Command(bin, "serve", "-config", filepath.Join(dir, "hbd.yaml"))
	cmd.Dir = dir
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()

	pool := x509.NewCertPool()
	pool.AddCert(first)
	pool.AddCert(second)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	served := func() int64 {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	testutil.Eventually(t, "hbd answering over HTTPS", 20*time.Second, func() bool { return served() == 1 })

	resp, err := client.Post(base+"/api/0/auth/login", "application/json", strings.NewReader(`{"username":"root","password":"correct horse"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login over HTTPS: %d", resp.StatusCode)
	}
	var secure bool
	for _, c := range resp.Cookies() {
		secure = secure || c.Secure
	}
	if !secure {
		t.Error("the session cookie is not Secure under TLS")
	}
	if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil && r.StatusCode == 200 {
		r.Body.Close()
		t.Error("hbd_port still answers plain HTTP")
	}

	// hbc verifies the daemon's certificate: with ca_file its samples
	// arrive; without, the certificate is refused and nothing is sent.
	hbc := testutil.Build(t, "./core/cmd/hbc")
	ca, _ := os.ReadFile(filepath.Join(dir, "one.pem"))
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600)
	agent := func(name, extra string) (*exec.Cmd, *testutil.Buffer) {
		conf := filepath.Join(dir, name+".yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf(`host: web01
key: %q
server_ipv4: 127.0.0.1:%d
server_ipv6: ""
api_url: %s
spool_dir: %s
send_interval: 1s
plugins:
  cpu_monitor: {interval: 1s}
  memory_monitor: {enabled: false}
  disk_monitor: {enabled: false}
  network_monitor: {enabled: false}
%s`, testutil.Key, testutil.FreePort(t), base, filepath.Join(dir, "spool-"+name), extra)), 0o600)
		c := exec.Command(hbc, "-config", conf)
		out := &testutil.Buffer{}
		c.Stderr = out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Signal(syscall.SIGKILL); c.Wait() })
		return c, out
	}
	untrusting, untrustingLog := agent("untrusting", "")
	trusting, _ := agent("trusting", "ca_file: "+filepath.Join(dir, "ca.pem")+"\n")
	login := func() string {
		resp, err := client.Post(base+"/api/0/auth/login", "application/json", strings.NewReader(`{"username":"root","password":"correct horse"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&v)
		return v.Token
	}
	tok := login()
	testutil.Eventually(t, "web01's samples over HTTPS", 30*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/0/hosts/web01/plugins", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var v struct{ Plugins map[string]any }
		json.NewDecoder(resp.Body).Decode(&v)
		return v.Plugins["cpu_monitor"] != nil
	})
	trusting.Process.Signal(syscall.SIGKILL)
	testutil.Eventually(t, "the agent without ca_file refusing the certificate", 30*time.Second, func() bool {
		return strings.Contains(untrustingLog.String(), "certificate")
	})
	untrusting.Process.Signal(syscall.SIGKILL)

	cfg, _ := os.ReadFile(filepath.Join(dir, "hbd.yaml"))
	os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(strings.ReplaceAll(string(cfg), "one.", "two.")), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	testutil.Eventually(t, "the new certificate after SIGHUP", 10*time.Second, func() bool { return served() == 2 })
}
