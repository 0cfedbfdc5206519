package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Options carries a Receiver's dependencies. The zero value is usable.
type Options struct {
	// Logger receives the start and stop of the receiver and errors of its
	// servers. Nil discards.
	Logger *slog.Logger

	_ struct{}
}

// Addrs are the addresses a Receiver listens on; "" for a disabled
// transport.
type Addrs struct {
	GRPC string
	HTTP string
}

// Receiver is the OTLP trace receiver. Its lifecycle is New, Start, Addrs,
// Shutdown; it cannot be restarted.
type Receiver struct {
	cfg  Config
	sink Sink
	log  *slog.Logger

	mu       sync.Mutex
	started  bool
	stopped  bool
	addrs    Addrs
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	wg       sync.WaitGroup
	serveErr []error // guarded by mu
}

// New checks cfg and returns a Receiver that hands what it accepts to sink.
// It does not listen yet.
func New(cfg Config, sink Sink, opts Options) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configure OTLP receiver: %w", err)
	}
	if sink == nil {
		return nil, errors.New("configure OTLP receiver: no sink")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg, sink: sink, log: log}, nil
}

// Start binds the configured addresses and serves them in the background.
// It binds every address before serving any, so a failure leaves nothing
// running. ctx bounds only the start.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("start OTLP receiver: already started")
	}
	r.started = true
	maxBytes := r.cfg.maxRequestBytes()
	var lc net.ListenConfig
	var grpcLn, httpLn net.Listener
	if r.cfg.GRPCAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", r.cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("start OTLP/gRPC receiver: %w", err)
		}
		grpcLn = ln
	}
	if r.cfg.HTTPAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", r.cfg.HTTPAddr)
		if err != nil {
			if grpcLn != nil {
				err = errors.Join(err, grpcLn.Close())
			}
			return fmt.Errorf("start OTLP/HTTP receiver: %w", err)
		}
		httpLn = ln
	}

	if grpcLn != nil {
		g := newGRPCHandler(r.sink, maxBytes)
		r.grpcSrv = grpc.NewServer(
			grpc.ForceServerCodecV2(rawCodec{}),
			grpc.MaxRecvMsgSize(maxBytes),
			grpc.UnknownServiceHandler(g.unknownService),
		)
		r.grpcSrv.RegisterService(&traceServiceDesc, g)
		r.addrs.GRPC = grpcLn.Addr().String()
		r.wg.Go(func() {
			if err := r.grpcSrv.Serve(grpcLn); err != nil {
				r.serveFailed(fmt.Errorf("serve OTLP/gRPC on %s: %w", r.addrs.GRPC, err))
			}
		})
	}
	if httpLn != nil {
		r.httpSrv = &http.Server{
			Handler:           newHTTPHandler(r.sink, maxBytes),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		}
		r.addrs.HTTP = httpLn.Addr().String()
		r.wg.Go(func() {
			if err := r.httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.serveFailed(fmt.Errorf("serve OTLP/HTTP on %s: %w", r.addrs.HTTP, err))
			}
		})
	}
	r.log.Info("OTLP receiver listening", "grpc", r.addrs.GRPC, "http", r.addrs.HTTP, "max_request_bytes", maxBytes)
	return nil
}

func (r *Receiver) serveFailed(err error) {
	r.log.Error("OTLP receiver stopped serving", "err", err)
	r.mu.Lock()
	r.serveErr = append(r.serveErr, err)
	r.mu.Unlock()
}

// Addrs returns the bound addresses (with the actual port when the
// configured one was 0). It is empty before Start.
func (r *Receiver) Addrs() Addrs {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs
}

// Shutdown stops accepting requests, lets those in flight finish until ctx
// is done (then cuts them off), and waits for the servers to end. It returns
// the errors of serving and stopping, joined. Calling it again, or before
// Start, returns nil.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.started || r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	grpcSrv, httpSrv := r.grpcSrv, r.httpSrv
	r.mu.Unlock()

	var errs []error
	if httpSrv != nil {
		if err := httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop OTLP/HTTP receiver: %w", err), httpSrv.Close())
		}
	}
	if grpcSrv != nil {
		done := make(chan struct{})
		go func() {
			grpcSrv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			grpcSrv.Stop()
			<-done
			errs = append(errs, fmt.Errorf("stop OTLP/gRPC receiver: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	r.mu.Lock()
	errs = append(errs, r.serveErr...)
	r.mu.Unlock()
	r.log.Info("OTLP receiver stopped")
	return errors.Join(errs...)
}
