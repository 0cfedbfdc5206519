package cli

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Factory holds what commands need, built lazily so that `--help`,
// `version`, `analyze` and `record` never load a kubeconfig.
type Factory struct {
	IO      *Streams
	Version string
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Logger returns the logger for stderr at the level of -v.
	Logger func() *slog.Logger
	// KubeConfig returns the client configuration of --kubeconfig,
	// --context and KUBECONFIG, loaded on first use.
	KubeConfig func() clientcmd.ClientConfig
	// Abandon is closed on a second interrupt: a command busy restoring
	// stops and prints how to finish.
	Abandon <-chan struct{}

	verbosity int
	logFormat string
	kube      *kubeFlags
}

type kubeFlags struct {
	rules     *clientcmd.ClientConfigLoadingRules
	overrides *clientcmd.ConfigOverrides
	once      sync.Once
	config    clientcmd.ClientConfig
}

// NewFactory returns the Factory of a real run.
func NewFactory(streams *Streams, version string, abandon <-chan struct{}) *Factory {
	f := &Factory{IO: streams, Version: version, Now: time.Now, Abandon: abandon}
	f.kube = &kubeFlags{
		rules:     clientcmd.NewDefaultClientConfigLoadingRules(),
		overrides: &clientcmd.ConfigOverrides{},
	}
	var once sync.Once
	var logger *slog.Logger
	f.Logger = func() *slog.Logger {
		once.Do(func() { logger = newLogger(f.IO.ErrOut, f.verbosity, f.logFormat) })
		return logger
	}
	f.KubeConfig = func() clientcmd.ClientConfig {
		f.kube.once.Do(func() {
			f.kube.config = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(f.kube.rules, f.kube.overrides)
		})
		return f.kube.config
	}
	return f
}

func newLogger(w io.Writer, verbosity int, format string) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case verbosity >= 2:
		level = slog.LevelDebug
	case verbosity == 1:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
