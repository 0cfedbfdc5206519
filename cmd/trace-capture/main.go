// Command trace-capture switches OpenTelemetry tracing on in a cluster's
// core components for a timed window, records their spans, restores every
// configuration, and analyses the result offline.
package main

import (
	"os"

	"github.com/trace-capture/trace-capture/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.System(), version))
}
