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
		return errors.New("usage: storegate sign xsolla|standard --secret S")
	}
	fs := flag.NewFlagSet("sign "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "the source's secret (required)")
	id := fs.String("id", "", "standard: webhook-id (default: a random msg_ id)")
	ts := fs.Int64("timestamp", 0, "standard: webhook-timestamp in Unix seconds (default: now)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("--secret is required")
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
	return fmt.Errorf("unknown signature scheme %q (xsolla, standard)", args[0])
}
