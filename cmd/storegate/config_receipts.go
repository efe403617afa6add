package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"storegate/adapters"
	"storegate/adapters/mail"
)

// receiptsLane is the dispatcher's lane, and the commands' target, of
// receipts. No target may take the name.
const receiptsLane = "receipts"

// ReceiptsConfig e-mails buyers their receipts through an SMTP relay:
// xsolla and partner sources' paid orders whose buyer's address is known.
// Zero fields take mail.Config's defaults.
type ReceiptsConfig struct {
	// Enabled turns receipts on. Default false.
	Enabled bool `yaml:"enabled"`
	// Host and Port are the relay's.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// TLS is starttls, tls or none (a relay on this machine only).
	TLS string `yaml:"tls"`
	// CAFile is a PEM file of the authorities the relay's certificate is
	// checked against, for a relay with a private certificate. Default:
	// the system's.
	CAFile string `yaml:"ca_file"`
	// Username and Password authenticate with the relay; give the
	// password as ${VAR}. Optional.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// From is the sender's bare address. Required when enabled.
	From string `yaml:"from"`
	// Timeout bounds one exchange with the relay.
	Timeout Duration `yaml:"timeout"`
	// MaxInFlight is how many receipts are sent at once:
	// mail.DefaultMaxInFlight.
	MaxInFlight int `yaml:"max_in_flight"`
	// Breaker tunes the relay's breaker.
	Breaker BreakerConfig `yaml:"breaker"`

	roots *x509.CertPool // CAFile's certificates, read once when the config is checked
}

// config is the mail.Config these settings stand for, zero fields
// included: mail.New fills them.
func (r ReceiptsConfig) config(now func() time.Time, onBreaker adapters.BreakerObserver) mail.Config {
	return mail.Config{Host: r.Host, Port: r.Port, TLS: r.TLS, RootCAs: r.roots, Username: r.Username, Password: r.Password, From: r.From,
		Timeout: r.Timeout.D(), Breaker: r.Breaker.config(), OnBreaker: onBreaker, Now: now}
}

// maxInFlight is the receipts lane's concurrency.
func (r ReceiptsConfig) maxInFlight() int {
	if r.MaxInFlight > 0 {
		return r.MaxInFlight
	}
	return mail.DefaultMaxInFlight
}

// target is the receipt target sources name: none while receipts are off.
func (r ReceiptsConfig) target() string {
	if r.Enabled {
		return receiptsLane
	}
	return ""
}

func (c *Config) validateReceipts() []string {
	var p []string
	for i, t := range c.Targets {
		if t.Name == receiptsLane {
			p = append(p, fmt.Sprintf("targets[%d].name: %q is the receipts' own lane; choose another name", i, t.Name))
		}
	}
	r := c.Receipts
	if r.Port < 0 || r.Timeout < 0 || r.MaxInFlight < 0 || r.Breaker.Failures < 0 || r.Breaker.OpenFor < 0 || r.Breaker.Probes < 0 {
		p = append(p, "receipts: values must not be negative")
	}
	if !r.Enabled {
		return p
	}
	if r.CAFile != "" {
		roots, err := readRoots(r.CAFile)
		if err != nil {
			p = append(p, "receipts.ca_file: "+err.Error())
		}
		c.Receipts.roots = roots
	}
	err := r.config(nil, nil).Validate()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			p = append(p, "receipts: "+e.Error())
		}
	} else if err != nil {
		p = append(p, "receipts: "+err.Error())
	}
	return p
}

// readRoots reads a PEM file of certificate authorities.
func readRoots(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return roots, nil
}
