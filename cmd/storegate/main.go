// Command storegate is the webhook gateway: serve, check a config, sign test
// payloads, run migrations, repair dead letters.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `storegate: a webhook gateway for game commerce

Usage:
  storegate serve --config FILE [--listen ADDR]   run the gateway
  storegate config check FILE                     report every problem of a config file
  storegate migrate --config FILE                 apply database migrations and exit
  storegate sign xsolla --secret S                sign a body (stdin) the way Xsolla does
  storegate sign standard --secret whsec_... [--id ID] [--timestamp T]
                                                  sign a body (stdin) with Standard Webhooks
  storegate sign jwt --secret KEY --sub PLAYER [--ttl 1h]
                                                  a player token (HS256) for Fulfill Orders
  storegate deadletters list|show|replay|discard  inspect and repair dead letters through a
                                                  running gateway's admin API
  storegate keys import|count --sku SKU [FILE]    fill and count a game_key SKU's pool of keys
                                                  through a running gateway's admin API
  storegate version                               the build's version and Go version

Every command takes --help. Commands that read a config take --config FILE.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "storegate:", err)
	if errors.As(err, new(usageError)) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], stdout, stderr)
	case "sign":
		return cmdSign(args[1:], stdin, stdout, stderr)
	case "deadletters":
		return cmdDeadLetters(ctx, args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(ctx, args[1:], stdin, stdout, stderr)
	case "version":
		return cmdVersion(args[1:], stdout, stderr)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "Usage: storegate version\n\nPrints the build's version, its commit when known, and the Go version.\n")
	if done, err := c.parse(args, stdout, stderr); done || err != nil {
		return err
	}
	if c.fs.NArg() > 0 {
		c.printUsage(stderr)
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}

const configUsage = `Usage: storegate config check FILE
       storegate config check --config FILE

Reads a config file as serve would, expanding ${VAR} from the environment,
and reports every problem at once, each with its line and path. Starts
nothing and opens no database.
`

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	c := newCommand("config check", configUsage)
	path := c.fs.String("config", "", "the config file (or give it as the argument)")
	if len(args) > 0 && isHelp(args[0]) {
		c.printUsage(stdout)
		return nil
	}
	if len(args) == 0 || args[0] != "check" {
		c.printUsage(stderr)
		return usagef("usage: storegate config check FILE")
	}
	if done, err := c.parse(args[1:], stdout, stderr); done || err != nil {
		return err
	}
	switch {
	case *path == "" && c.fs.NArg() == 1:
		*path = c.fs.Arg(0)
	case *path != "" && c.fs.NArg() == 0:
	default:
		c.printUsage(stderr)
		return usagef("config check: give one config file, as FILE or --config FILE")
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d targets, %d catalog entries)\n", *path, len(cfg.Sources), len(cfg.Targets), len(cfg.Catalog))
	return nil
}
