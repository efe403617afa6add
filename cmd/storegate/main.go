// Command storegate is the webhook gateway: serve, check a config, sign test
// payloads, run migrations, repair dead letters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `storegate: a webhook gateway for game commerce

Usage:
  storegate serve --config FILE [--listen ADDR]   run the gateway
  storegate config check FILE                     validate a config file
  storegate migrate --config FILE                 apply database migrations and exit
  storegate sign xsolla --secret S                sign a body (stdin) the way Xsolla does
  storegate sign standard --secret whsec_... [--id ID] [--timestamp T]
                                                  sign a body (stdin) with Standard Webhooks
  storegate deadletters list|show|replay|discard  inspect and repair dead letters through a
                                                  running gateway's admin API (see: storegate deadletters)
  storegate sign jwt --secret KEY --sub PLAYER [--ttl 1h]
                                                  a player token (HS256) for Fulfill Orders
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "storegate:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "config":
		if len(args) != 3 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return errors.New("usage: storegate config check FILE")
		}
		cfg, err := LoadConfig(args[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d sources, %d targets, %d catalog entries)\n", args[2], len(cfg.Sources), len(cfg.Targets), len(cfg.Catalog))
		return nil
	case "migrate":
		return cmdMigrate(ctx, args[1:], stdout, stderr)
	case "sign":
		return cmdSign(args[1:], stdin, stdout, stderr)
	case "deadletters":
		return cmdDeadLetters(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
