package receiver

import (
	"errors"
	"fmt"
	"net"
)

// Default listen addresses: loopback, the OTLP ports.
const (
	DefaultGRPCAddr = "127.0.0.1:4317"
	DefaultHTTPAddr = "127.0.0.1:4318"
)

// DefaultMaxRequestBytes bounds one request after decompression unless
// Config.MaxRequestBytes says otherwise: well above gRPC's default 4 MiB, so
// that a component flushing a large batch is not refused by surprise.
const DefaultMaxRequestBytes = 64 << 20

// MaxMaxRequestBytes is the largest Config.MaxRequestBytes: 1 GiB.
const MaxMaxRequestBytes = 1 << 30

// MaxRequestBytesFlag names the command-line flag that sets
// Config.MaxRequestBytes; errors about oversized requests mention it.
const MaxRequestBytesFlag = "--max-request-bytes"

// Config configures a Receiver. Use DefaultConfig for the defaults.
type Config struct {
	// GRPCAddr is the host:port of the OTLP/gRPC listener. Empty disables
	// gRPC. Port 0 picks a free port (see Receiver.Addrs).
	GRPCAddr string
	// HTTPAddr is the host:port of the OTLP/HTTP listener. Empty disables
	// HTTP.
	HTTPAddr string
	// MaxRequestBytes bounds one request after decompression; larger
	// requests are refused (HTTP 413 with a message naming the limit and
	// MaxRequestBytesFlag; gRPC ResourceExhausted, whose message gRPC
	// writes itself, naming the limit). Zero means DefaultMaxRequestBytes.
	MaxRequestBytes int

	_ struct{}
}

// DefaultConfig returns a Config listening on both default loopback ports.
func DefaultConfig() Config {
	return Config{GRPCAddr: DefaultGRPCAddr, HTTPAddr: DefaultHTTPAddr, MaxRequestBytes: DefaultMaxRequestBytes}
}

// Validate reports what is wrong with c, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" && c.HTTPAddr == "" {
		errs = append(errs, errors.New("at least one of the gRPC and HTTP addresses must be set"))
	}
	for _, a := range []struct{ name, addr string }{{"gRPC", c.GRPCAddr}, {"HTTP", c.HTTPAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s address %q: %w", a.name, a.addr, err))
		}
	}
	if c.GRPCAddr != "" && c.GRPCAddr == c.HTTPAddr {
		if _, port, err := net.SplitHostPort(c.GRPCAddr); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("the gRPC and HTTP addresses are both %s", c.GRPCAddr))
		}
	}
	if c.MaxRequestBytes < 0 || c.MaxRequestBytes > MaxMaxRequestBytes {
		errs = append(errs, fmt.Errorf("max request bytes must be between 0 (the default) and %d, got %d", MaxMaxRequestBytes, c.MaxRequestBytes))
	}
	return errors.Join(errs...)
}

func (c Config) maxRequestBytes() int {
	if c.MaxRequestBytes <= 0 {
		return DefaultMaxRequestBytes
	}
	return c.MaxRequestBytes
}
