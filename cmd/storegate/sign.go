package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"storegate/signing"
)

const signUsage = `Usage: storegate sign xsolla --secret S < body
       storegate sign standard --secret whsec_... [--id ID] [--timestamp T] < body
       storegate sign jwt --secret KEY --sub PLAYER [--ttl 1h] [--iss I] [--aud A]

xsolla and standard read a body on standard input and print the signature
header(s) a sender would send with it, for testing a setup with curl
(curl -H @- reads them from standard input). The body is signed byte for
byte: no newline is added or removed. jwt prints a player token for
Fulfill Orders, as a game's login service would issue it.
`

// cmdSign prints the signature header(s) for a body read from stdin, or a
// player token.
func cmdSign(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	scheme := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scheme, args = args[0], args[1:]
	}
	c := newCommand("sign "+scheme, signUsage)
	secret := c.fs.String("secret", "", "the source's secret, or the player token key (required)")
	id := c.fs.String("id", "", "standard: webhook-id (default: a random msg_ id)")
	ts := c.fs.Int64("timestamp", 0, "standard: webhook-timestamp in Unix seconds (default: now)")
	sub := c.fs.String("sub", "", "jwt: the player id (sub claim, required)")
	ttl := c.fs.Duration("ttl", time.Hour, "jwt: lifetime")
	iss := c.fs.String("iss", "", "jwt: issuer (iss claim, optional)")
	aud := c.fs.String("aud", "", "jwt: audience (aud claim, optional)")
	if done, err := c.parse(args, stdout, stderr); done || err != nil {
		return err
	}
	switch {
	case scheme != "xsolla" && scheme != "standard" && scheme != "jwt":
		c.printUsage(stderr)
		return usagef("sign: want xsolla, standard or jwt, not %q", scheme)
	case *secret == "":
		c.printUsage(stderr)
		return usagef("sign %s: --secret is required", scheme)
	case c.fs.NArg() > 0:
		c.printUsage(stderr)
		return usagef("sign %s: unexpected argument %q (the body comes on standard input)", scheme, c.fs.Arg(0))
	}
	if scheme == "jwt" {
		// A player token for Fulfill Orders, as a game's login service
		// would issue it: HS256 with the key in fulfill_orders.token_keys.
		if *sub == "" || *ttl <= 0 {
			c.printUsage(stderr)
			return usagef("sign jwt: --sub is required and --ttl must be positive")
		}
		now := time.Now()
		claims := signing.Claims{Issuer: *iss, Subject: *sub, IssuedAt: now.Unix(), ExpiresAt: now.Add(*ttl).Unix()}
		if *aud != "" {
			claims.Audience = signing.Audience{*aud}
		}
		tok, err := signing.SignJWT([]byte(*secret), claims)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(stdin, 16<<20))
	if err != nil {
		return err
	}
	switch scheme {
	case "xsolla":
		fmt.Fprintf(stdout, "Authorization: %s\n", signing.XsollaSignature(body, *secret))
	case "standard":
		if *id == "" {
			*id = "msg_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
		if *ts == 0 {
			*ts = time.Now().Unix()
		}
		headers, err := signing.StandardHeaders([]string{*secret}, *id, *ts, body)
		if err != nil {
			return err
		}
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			fmt.Fprintf(stdout, "%s: %s\n", h, headers[h])
		}
	}
	return nil
}
