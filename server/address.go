package server

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ClientIP is the caller's address: the peer, or, when the peer is a trusted
// proxy, the right-most X-Forwarded-For address that is not a trusted proxy.
// The header's lines count as one list in their order: a proxy may add a
// line of its own (HAProxy's option forwardfor does) rather than extend the
// caller's, so the address it saw is on the last line, not the first. An
// entry that is not a bare address, where the client should be, yields no
// address: it matches no allowlist.
func (s *Server) ClientIP(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}
		}
		addr = addr.Unmap()
		if !s.trusted(addr) {
			return addr
		}
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allowed reports whether an allowlist admits an address; an empty list
// admits any.
func Allowed(list []netip.Prefix, a netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
