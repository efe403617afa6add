package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// command is one subcommand's flags and usage. Its --help prints the usage
// on standard output and succeeds; a usage error prints it on standard
// error and fails.
type command struct {
	fs    *flag.FlagSet
	usage string // the synopsis and what the command does; the flags follow
}

func newCommand(name, usage string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are returned, and the usage printed once
	fs.Usage = func() {}
	return &command{fs: fs, usage: usage}
}

// printUsage writes the usage, then the flags and their defaults.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, c.usage)
	flags := false
	c.fs.VisitAll(func(*flag.Flag) { flags = true })
	if flags {
		fmt.Fprintln(w, "\nFlags:")
		c.fs.SetOutput(w)
		c.fs.PrintDefaults()
		c.fs.SetOutput(io.Discard)
	}
}

// parse parses args. done is true after --help (nothing more to do) and
// after a usage error (err says which).
func (c *command) parse(args []string, stdout, stderr io.Writer) (done bool, err error) {
	return c.result(c.fs.Parse(args), stdout, stderr)
}

// result turns a parse error into the answer parse gives.
func (c *command) result(err error, stdout, stderr io.Writer) (bool, error) {
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printUsage(stdout)
		return true, nil
	case err != nil:
		c.printUsage(stderr)
		return true, usageError{err}
	}
	return false, nil
}

// usageError is a command line that cannot run: the process exits 2, as
// for every other usage error, rather than 1 for a failure.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module's version, or the commit, is read from the binary.
var version string

// versionLine is what `storegate version` prints.
func versionLine() string {
	v, commit, modified := version, "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	line := "storegate " + v
	if commit != "" {
		line += " commit " + commit[:min(12, len(commit))]
		if modified {
			line += "+modified"
		}
	}
	return fmt.Sprintf("%s %s %s/%s", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
