package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// DestinationsKey is the configuration key through which the daemon hands a
// plugin the destination policy of the channel with every Validate and
// Notify call. The SDK takes it out of the [Config] before the Notifier
// sees it and enforces it on every connection made through [HTTPClient] or
// [Dialer]. It is reserved: no schema field can have it (it does not match
// the field key pattern), the daemon refuses it in channel settings and
// always overwrites it with its own value.
const DestinationsKey = "_hbd_destinations"

// ErrDestinationRefused is wrapped by every [*DestinationError].
var ErrDestinationRefused = errors.New("destination refused by policy")

// Destinations is the policy of where a channel may connect. The daemon
// sends it as JSON under [DestinationsKey]; a Notifier finds it in the ctx
// of its call ([DestinationsFrom]) and needs to do nothing with it when it
// connects through [HTTPClient] or [Dialer], which check it on every
// connection, after name resolution, so a name that resolves to another
// address later (DNS rebinding) is checked again.
type Destinations struct {
	// Restricted is set for channels of users who are not admins: then
	// loopback, link-local (cloud metadata included), unspecified,
	// multicast, private, shared and reserved addresses are refused unless
	// Allow holds them, and OwnPorts are refused on the machine's own
	// addresses even then.
	Restricted bool `json:"restricted,omitempty"`
	// Allow lists networks a restricted channel may reach although they
	// are refused by default.
	Allow []netip.Prefix `json:"allow,omitempty"`
	// Deny lists networks no channel may reach, restricted or not.
	Deny []netip.Prefix `json:"deny,omitempty"`
	// OwnPorts are the daemon's listening ports.
	OwnPorts []int `json:"own_ports,omitempty"`
}

// Encode returns the policy as the daemon sends it.
func (p Destinations) Encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// ParseDestinations decodes a policy sent under [DestinationsKey].
func ParseDestinations(s string) (*Destinations, error) {
	var p Destinations
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, errors.New("unreadable destination policy from the daemon")
	}
	for i, pf := range p.Allow {
		p.Allow[i] = normPrefix(pf)
	}
	for i, pf := range p.Deny {
		p.Deny[i] = normPrefix(pf)
	}
	return &p, nil
}

// normPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 form, the form
// checked addresses take.
func normPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// DestinationError is a connection the policy refused.
type DestinationError struct {
	// Addr is the address the connection would have reached.
	Addr netip.AddrPort
	// Why names the rule, e.g. "loopback" or "listed in channel_destinations.deny".
	Why string
}

// Error returns "destination refused by policy: 127.0.0.1:8080 is loopback".
func (e *DestinationError) Error() string {
	return fmt.Sprintf("%s: %s is %s", ErrDestinationRefused, e.Addr, e.Why)
}

// Unwrap returns [ErrDestinationRefused].
func (e *DestinationError) Unwrap() error { return ErrDestinationRefused }

// Permanent reports true: retrying reaches the same refusal.
func (e *DestinationError) Permanent() bool { return true }

// refusedByDefault are the networks a restricted channel may not reach
// unless allowed, besides what the netip predicates catch.
var refusedByDefault = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (or broadcast)"},
	{netip.MustParsePrefix("::/96"), "reserved (IPv4-compatible)"},
	{netip.MustParsePrefix("fec0::/10"), "private (site-local)"},
}

// nat64 is the well-known NAT64 prefix: the IPv4 address inside is what
// the connection reaches.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check reports whether a connection to addr is allowed: nil or a
// [*DestinationError].
func (p *Destinations) Check(addr netip.AddrPort) error {
	if p == nil {
		return nil
	}
	ip := addr.Addr().Unmap().WithZone("")
	refuse := func(why string) error {
		return &DestinationError{Addr: netip.AddrPortFrom(ip, addr.Port()), Why: why}
	}
	inner := ip
	if nat64.Contains(ip) {
		b := ip.As16()
		inner = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, pf := range p.Deny {
		if pf.Contains(ip) || pf.Contains(inner) {
			return refuse("listed in channel_destinations.deny")
		}
	}
	if !p.Restricted {
		return nil
	}
	if slices.Contains(p.OwnPorts, int(addr.Port())) && localAddr(inner) {
		return refuse("the daemon's own port on this machine")
	}
	for _, pf := range p.Allow {
		if pf.Contains(ip) || pf.Contains(inner) {
			return nil
		}
	}
	if why := refusedWhy(inner); why != "" {
		return refuse(why)
	}
	return nil
}

// refusedWhy names the default rule that refuses ip, or "".
func refusedWhy(ip netip.Addr) string {
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLinkLocalUnicast():
		return "link-local (cloud metadata services live there)"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsPrivate():
		return "private"
	}
	for _, r := range refusedByDefault {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	return ""
}

// localAddr reports whether ip reaches this machine: loopback, unspecified
// or one of its interface addresses.
func localAddr(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: assume it is
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if local, ok := netip.AddrFromSlice(n.IP); ok && local.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// control is a net.Dialer Control function enforcing p on the resolved
// address of every connection attempt.
func (p *Destinations) control(network, address string) error {
	if p == nil {
		return nil
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		if p.Restricted {
			return fmt.Errorf("%w: network %s is not allowed", ErrDestinationRefused, network)
		}
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check address %q", ErrDestinationRefused, address)
	}
	return p.Check(ap)
}

// checkHost resolves host (a name or an address) and checks every address
// it has with port: for connections made by a proxy, which the dialer does
// not see. A later change of the name's addresses is not seen.
func (p *Destinations) checkHost(ctx context.Context, host string, port int) error {
	if p == nil || (len(p.Deny) == 0 && !p.Restricted) {
		return nil
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return err
		}
	}
	for _, ip := range ips {
		if err := p.Check(netip.AddrPortFrom(ip, uint16(port))); err != nil {
			return err
		}
	}
	return nil
}

type destinationsKey struct{}

// WithDestinations returns a copy of ctx carrying p. The SDK does this
// before each call into a Notifier; tests may use it to apply a policy.
func WithDestinations(ctx context.Context, p *Destinations) context.Context {
	return context.WithValue(ctx, destinationsKey{}, p)
}

// DestinationsFrom returns the policy of the call ctx belongs to, or nil
// when there is none (a daemon that predates it, a test).
func DestinationsFrom(ctx context.Context) *Destinations {
	p, _ := ctx.Value(destinationsKey{}).(*Destinations)
	return p
}

// Dialer returns a net.Dialer for notifiers that open their own
// connections (SMTP, say): every address it connects to, after name
// resolution, is checked against the destination policy carried by the
// ctx of DialContext ([DestinationsFrom]), and refused with a
// [*DestinationError]. timeout bounds the connect (10 s when <= 0).
// Connections made any other way are not checked.
func Dialer(timeout time.Duration) *net.Dialer {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		ControlContext: func(ctx context.Context, network, address string, _ syscall.RawConn) error {
			return DestinationsFrom(ctx).control(network, address)
		},
	}
}

// takeDestinations removes the policy from cfg and decodes it; nil when
// cfg has none.
func takeDestinations(cfg Config) (*Destinations, error) {
	raw, ok := cfg[DestinationsKey]
	if !ok {
		return nil, nil
	}
	delete(cfg, DestinationsKey)
	return ParseDestinations(raw)
}

// portOf returns the port of u's host or the scheme's default.
func portOf(scheme, port string) int {
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	if scheme == "https" {
		return 443
	}
	return 80
}
