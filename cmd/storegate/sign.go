package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"storegate/signing"
)

// cmdSign prints the signature header(s) for a body read from stdin, so an
// integrator can test a setup with curl. The body is signed byte for byte:
// no newline is added or removed.
func cmdSign(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: storegate sign xsolla|standard|jwt --secret S")
	}
	fs := flag.NewFlagSet("sign "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "the source's secret (required)")
	id := fs.String("id", "", "standard: webhook-id (default: a random msg_ id)")
	ts := fs.Int64("timestamp", 0, "standard: webhook-timestamp in Unix seconds (default: now)")
	sub := fs.String("sub", "", "jwt: the player id (sub claim, required)")
	ttl := fs.Duration("ttl", time.Hour, "jwt: lifetime")
	iss := fs.String("iss", "", "jwt: issuer (iss claim, optional)")
	aud := fs.String("aud", "", "jwt: audience (aud claim, optional)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("--secret is required")
	}
	if args[0] == "jwt" {
		// A player token for Fulfill Orders, as a game's login service
		// would issue it: HS256 with the key in fulfill_orders.token_keys.
		if *sub == "" || *ttl <= 0 {
			return errors.New("jwt: --sub is required and --ttl must be positive")
		}
		now := time.Now()
		c := signing.Claims{Issuer: *iss, Subject: *sub, IssuedAt: now.Unix(), ExpiresAt: now.Add(*ttl).Unix()}
		if *aud != "" {
			c.Audience = signing.Audience{*aud}
		}
		tok, err := signing.SignJWT([]byte(*secret), c)
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
	switch args[0] {
	case "xsolla":
		fmt.Fprintf(stdout, "Authorization: %s\n", signing.XsollaSignature(body, *secret))
		return nil
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
		return nil
	}
	return fmt.Errorf("unknown signature scheme %q (xsolla, standard, jwt)", args[0])
}
