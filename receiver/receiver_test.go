package receiver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", DefaultConfig(), ""},
		{"grpc only", Config{GRPCAddr: "127.0.0.1:0"}, ""},
		{"http only", Config{HTTPAddr: "localhost:4318"}, ""},
		{"both on port 0", Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, ""},
		{"nothing", Config{}, "at least one"},
		{"bad address", Config{GRPCAddr: "4317"}, "invalid gRPC address"},
		{"same address", Config{GRPCAddr: "127.0.0.1:4317", HTTPAddr: "127.0.0.1:4317"}, "both 127.0.0.1:4317"},
		{"negative limit", Config{GRPCAddr: "127.0.0.1:0", MaxRequestBytes: -1}, "between 0"},
		{"huge limit", Config{GRPCAddr: "127.0.0.1:0", MaxRequestBytes: 2 << 30}, "between 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, tc.wantErr)
			}
			if _, err := New(tc.cfg, &memSink{}, Options{}); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	if d := DefaultConfig(); d.GRPCAddr != "127.0.0.1:4317" || d.HTTPAddr != "127.0.0.1:4318" || d.MaxRequestBytes != 64<<20 {
		t.Errorf("DefaultConfig() = %+v", d)
	}
	if _, err := New(loopback(), nil, Options{}); err == nil {
		t.Error("New accepted a nil sink")
	}
}

// memSink keeps what it is given.
type memSink struct {
	mu       sync.Mutex
	reqs     [][]byte
	batches  []Batch
	refusals []Refusal
}

func (s *memSink) Consume(_ context.Context, req []byte, b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, append([]byte(nil), req...))
	s.batches = append(s.batches, b)
	return nil
}

func (s *memSink) CountRefusal(r Refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, r)
}

func TestStartFailureLeavesNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := free.Addr().String()
	free.Close()

	r, err := New(Config{GRPCAddr: grpcAddr, HTTPAddr: taken.Addr().String()}, &memSink{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "OTLP/HTTP") {
		t.Fatalf("Start = %v, want an error about the HTTP address", err)
	}
	// The gRPC address was bound first; it must be free again.
	ln, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		t.Fatalf("the gRPC address is still taken after the failed start: %v", err)
	}
	ln.Close()
	if err := r.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown after a failed start: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	sink := &memSink{}
	r, err := New(loopback(), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if a := r.Addrs(); a != (Addrs{}) {
		t.Errorf("Addrs before Start = %+v", a)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err == nil {
		t.Error("a second Start succeeded")
	}
	a := r.Addrs()
	for _, addr := range []string{a.GRPC, a.HTTP} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("bound address %q: want 127.0.0.1 and a real port", addr)
		}
	}
	res := post(t, http.MethodPost, "http://"+a.HTTP+TracesPath, contentTypeProtobuf, "", newSynthBatch(5, 20).req)
	if res.status != http.StatusOK {
		t.Fatalf("request: %d %s", res.status, res.body)
	}
	if len(sink.batches) != 1 || sink.batches[0].Transport != TransportHTTP || sink.batches[0].Spans() != 20 ||
		!strings.HasPrefix(sink.batches[0].Peer, "127.0.0.1:") || sink.batches[0].Resources[0].Service == "" {
		t.Errorf("batches %+v", sink.batches)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := http.Post("http://"+a.HTTP+TracesPath, contentTypeProtobuf, nil); err == nil {
		t.Error("the HTTP port still answers after Shutdown")
	}
}

// blockingSink holds every request until released.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
}

func (s *blockingSink) Consume(ctx context.Context, _ []byte, _ Batch) error {
	s.entered <- struct{}{}
	<-s.release
	return nil
}

func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	for _, transport := range []Transport{TransportHTTP, TransportGRPC} {
		t.Run(string(transport), func(t *testing.T) {
			sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
			r, err := New(loopback(), sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			req := newSynthBatch(6, 10).req
			answered := make(chan error, 1)
			go func() {
				if transport == TransportHTTP {
					resp, err := http.Post("http://"+r.Addrs().HTTP+TracesPath, contentTypeProtobuf, strings.NewReader(string(req)))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = errors.New(resp.Status)
						}
					}
					answered <- err
					return
				}
				answered <- dialRaw(t, r.Addrs().GRPC).Invoke(context.Background(), "/"+traceServiceName+"/Export", &rawMsg{b: req}, &rawMsg{})
			}()
			<-sink.entered
			stopped := make(chan error, 1)
			go func() { stopped <- r.Shutdown(context.Background()) }()
			close(sink.release)
			if err := <-stopped; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-answered; err != nil {
				t.Errorf("the request in flight failed: %v", err)
			}
		})
	}
}

func TestShutdownDeadlineCutsRequestsOff(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	r, err := New(Config{HTTPAddr: "127.0.0.1:0"}, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Post("http://"+r.Addrs().HTTP+TracesPath, contentTypeProtobuf, strings.NewReader(string(newSynthBatch(7, 10).req)))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-sink.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = r.Shutdown(ctx)
	close(sink.release)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a done context = %v, want context.Canceled", err)
	}
}
