package enable

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// These tests run the real etcd and kube-apiserver binaries with the command lines that
// EnableArgs produces, on loopback, and check that the processes start and export spans to an
// OTLP receiver. They need the binaries, so they run only when TRACE_CAPTURE_BIN_DIR names a
// folder holding files named etcd-v<version>* and kube-apiserver-v<version>* (the cache that
// hack/ scripts build), e.g.
//
//	TRACE_CAPTURE_BIN_DIR=$HOME/.cache/trace-capture/bin go test ./capture/enable -run Real

// spanSink is a minimal OTLP/gRPC trace receiver.
type spanSink struct {
	collectortrace.UnimplementedTraceServiceServer
	mu     sync.Mutex
	spans  map[string]int            // per service.name
	traces map[string]map[string]int // service.name -> trace id -> spans
	notify chan struct{}
}

func (s *spanSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s.spans[service]++
				if s.traces[service] == nil {
					s.traces[service] = map[string]int{}
				}
				s.traces[service][fmt.Sprintf("%x", sp.GetTraceId())]++
			}
		}
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (s *spanSink) count(service string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans[service]
}

// sharedTraces counts the trace IDs seen from both services.
func (s *spanSink) sharedTraces(a, b string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.traces[a] {
		if s.traces[b][id] > 0 {
			n++
		}
	}
	return n
}

func startSink(t *testing.T) (*spanSink, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &spanSink{spans: map[string]int{}, traces: map[string]map[string]int{}, notify: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, sink)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return sink, lis.Addr().String()
}

func realBinary(t *testing.T, prefix string) string {
	t.Helper()
	dir := os.Getenv("TRACE_CAPTURE_BIN_DIR")
	if dir == "" {
		t.Skip("TRACE_CAPTURE_BIN_DIR is not set")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return m
		}
	}
	t.Skipf("no %s* binary in %s", prefix, dir)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// process runs a command until the test ends and reports whether it exited early.
type process struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
	mu     *sync.Mutex
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startProcess(t *testing.T, args []string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(args[0], args[1:]...), out: &bytes.Buffer{}, exited: make(chan struct{}), mu: &sync.Mutex{}}
	p.cmd.Stdout = lockedBuffer{p.mu, p.out}
	p.cmd.Stderr = lockedBuffer{p.mu, p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(args[0]), p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor polls cond until it holds, failing if the process exits first.
func waitFor(t *testing.T, p *process, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-p.exited:
			t.Fatalf("%s exited while waiting for %s", filepath.Base(p.cmd.Path), what)
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func binaryVersion(t *testing.T, bin string) Version {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startTracedEtcd runs etcd with kubeadm's flags plus what EnableArgs adds, and returns its
// client URL.
func startTracedEtcd(t *testing.T, bin, otlp string, extra ...string) (*process, string) {
	t.Helper()
	v := binaryVersion(t, bin)
	client, peer, metrics := freePort(t), freePort(t), freePort(t)
	args := []string{bin, "--name=cp-1", "--data-dir=" + t.TempDir(),
		"--listen-client-urls=http://127.0.0.1:" + client, "--advertise-client-urls=http://127.0.0.1:" + client,
		"--listen-peer-urls=http://127.0.0.1:" + peer, "--initial-advertise-peer-urls=http://127.0.0.1:" + peer,
		"--initial-cluster=cp-1=http://127.0.0.1:" + peer, "--listen-metrics-urls=http://127.0.0.1:" + metrics,
		"--snapshot-count=10000"}
	if v.AtLeast(3, 6, 0) {
		args = append(args, "--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s")
	} else {
		args = append(args, "--experimental-initial-corrupt-check=true", "--experimental-watch-progress-notify-interval=5s")
	}
	args = append(args, extra...)
	res, err := EnableArgs(ArgsInput{Component: Etcd, Version: v, Args: args}, Target{Endpoint: otlp, SamplingRatePerMillion: 1000000, ServiceInstanceID: "cp-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd %s flags: %q", v, res.Flags)
	p := startProcess(t, res.Args)
	url := "http://127.0.0.1:" + client
	waitFor(t, p, "etcd to serve", func() bool {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p, url
}

func TestRealEtcdExportsWithEnabledFlags(t *testing.T) {
	bin := realBinary(t, "etcd-v")
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"kubeadm flags", nil},
		// etcd 3.6 refuses both spellings of one setting; EnableArgs keeps the one in use.
		{"experimental spelling in use", []string{"--experimental-distributed-tracing-service-name=other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink, otlp := startSink(t)
			p, url := startTracedEtcd(t, bin, otlp, tc.extra...)
			// A put through etcd's gRPC gateway is a gRPC call inside etcd: a traced server span.
			body := fmt.Sprintf(`{"key":%q,"value":%q}`, base64.StdEncoding.EncodeToString([]byte("k")), base64.StdEncoding.EncodeToString([]byte("v")))
			waitFor(t, p, "etcd spans", func() bool {
				resp, err := http.Post(url+"/v3/kv/put", "application/json", strings.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
				return sink.count("etcd") > 0
			})
			if tc.extra == nil && strings.Contains(p.output(), "deprecated") {
				t.Errorf("etcd warns about deprecated flags:\n%s", p.output())
			}
		})
	}
}

func TestRealAPIServerExportsWithTracingConfig(t *testing.T) {
	etcdBin := realBinary(t, "etcd-v")
	apiBin := realBinary(t, "kube-apiserver-v")
	sink, otlp := startSink(t)
	_, etcdURL := startTracedEtcd(t, etcdBin, otlp)

	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tokens := write("tokens.csv", []byte("test-token,admin,1,system:masters\n"))

	v := binaryVersion(t, apiBin)
	tg := Target{Endpoint: otlp, SamplingRatePerMillion: 1000000}
	cfg, err := APIServerTracingConfig(v, tg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := write("tracing.yaml", cfg)
	port := freePort(t)
	args := []string{apiBin, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + port,
		"--etcd-servers=" + etcdURL, "--cert-dir=" + filepath.Join(dir, "certs"),
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--token-auth-file=" + tokens,
		"--authorization-mode=RBAC", "--anonymous-auth=false", "--service-cluster-ip-range=10.96.0.0/24",
		"--endpoint-reconciler-type=none"}
	res, err := EnableArgs(ArgsInput{Component: APIServer, Version: v, Args: args, TracingConfigPath: cfgPath}, tg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Flags, []string{"--tracing-config-file=" + cfgPath}) {
		t.Fatalf("flags %q", res.Flags)
	}
	p := startProcess(t, res.Args)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://127.0.0.1:"+port+path, nil)
		req.Header.Set("Authorization", "Bearer test-token")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, p, "kube-apiserver /readyz", func() bool { return get("/readyz") == http.StatusOK })
	waitFor(t, p, "kube-apiserver spans that reach etcd", func() bool {
		get("/api/v1/namespaces/default/configmaps")
		return sink.count("apiserver") > 0 && sink.sharedTraces("apiserver", "etcd") > 0
	})
	t.Logf("spans: apiserver %d, etcd %d; traces through both: %d", sink.count("apiserver"), sink.count("etcd"), sink.sharedTraces("apiserver", "etcd"))
}
