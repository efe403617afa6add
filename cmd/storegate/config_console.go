package main

import (
	"fmt"
	"time"

	"storegate/api/console"
)

// ConsoleConfig is the support console at /console/: the fields of
// console.Config of the same names, whose defaults apply to the zero ones.
// It signs in with admin.tokens.
type ConsoleConfig struct {
	// Disabled serves no console. Default false.
	Disabled       bool     `yaml:"disabled"`
	SessionTTL     Duration `yaml:"session_ttl"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	SignInAttempts int      `yaml:"sign_in_attempts"`
	SignInWindow   Duration `yaml:"sign_in_window"`
	SecureCookies  bool     `yaml:"secure_cookies"`
}

func (c ConsoleConfig) validate() []string {
	var p []string
	for _, d := range []struct {
		key string
		v   Duration
	}{{"session_ttl", c.SessionTTL}, {"idle_timeout", c.IdleTimeout}, {"sign_in_window", c.SignInWindow}} {
		if d.v.D() < 0 || d.v.D() > 30*24*time.Hour {
			p = append(p, fmt.Sprintf("console.%s: from 0s (the default) to 720h", d.key))
		}
	}
	if c.SignInAttempts < 0 || c.SignInAttempts > 1000 {
		p = append(p, "console.sign_in_attempts: from 1 to 1000 (0 takes the default)")
	}
	return p
}

// config is the console.Config these settings stand for.
func (c ConsoleConfig) config(adminTokens []string, now func() time.Time) console.Config {
	return console.Config{Disabled: c.Disabled, AdminTokens: adminTokens, SessionTTL: c.SessionTTL.D(), IdleTimeout: c.IdleTimeout.D(),
		SignInAttempts: c.SignInAttempts, SignInWindow: c.SignInWindow.D(), SecureCookies: c.SecureCookies, Now: now}
}
