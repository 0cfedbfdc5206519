package localcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// The test binary doubles as a fake etcd and a fake kube-apiserver: with
// LOCALCP_FAKE=1 in its environment it serves the readiness endpoints that
// Start polls, using the same flags the real binaries get.
func TestMain(m *testing.M) {
	if os.Getenv("LOCALCP_FAKE") == "1" {
		os.Exit(fakeMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func flagValue(args []string, name string) string {
	v := ""
	for _, a := range args {
		if s, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = s // the last one wins, as in the real binaries
		}
	}
	return v
}

func fakeMain(args []string) int {
	fmt.Println("fake started:", strings.Join(args, " "))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "OTEL_") {
			fmt.Println("fake env:", kv)
		}
	}
	if slices.Contains(args, "--version") {
		fmt.Println("etcd Version: 3.6.16\nGit SHA: abc\nGo Version: go1.26.8")
		return 0
	}
	if slices.Contains(args, "--fail-now") {
		fmt.Println("boom: cannot start")
		return 3
	}
	term := make(chan os.Signal, 1)
	if slices.Contains(args, "--ignore-sigterm") {
		signal.Ignore(syscall.SIGTERM) // term never fires: only SIGKILL ends this one
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}

	var srv *http.Server
	var ln net.Listener
	var err error
	switch {
	case flagValue(args, "listen-client-urls") != "":
		u, _ := url.Parse(flagValue(args, "listen-client-urls"))
		if ln, err = net.Listen("tcp", u.Host); err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				fmt.Fprint(w, `{"health":"true","reason":""}`)
				return
			}
			http.NotFound(w, r)
		})}
	case flagValue(args, "secure-port") != "":
		cert, err := tls.LoadX509KeyPair(flagValue(args, "tls-cert-file"), flagValue(args, "tls-private-key-file"))
		if err != nil {
			fmt.Println("load serving cert:", err)
			return 1
		}
		tokens, err := os.ReadFile(flagValue(args, "token-auth-file"))
		if err != nil {
			fmt.Println("read tokens:", err)
			return 1
		}
		if ln, err = net.Listen("tcp", flagValue(args, "bind-address")+":"+flagValue(args, "secure-port")); err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !strings.Contains(string(tokens), tok+",") {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			if r.URL.Path == "/readyz" {
				fmt.Fprint(w, "ok")
				return
			}
			http.NotFound(w, r)
		})}
	default:
		fmt.Println("fake: no known flags")
		return 2
	}
	go srv.Serve(ln)
	<-term
	fmt.Println("fake: SIGTERM")
	srv.Close()
	return 0
}

func fakeOptions(t *testing.T) Options {
	t.Helper()
	t.Setenv("LOCALCP_FAKE", "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		EtcdBinary:      self,
		APIServerBinary: self,
		Dir:             t.TempDir(),
		ReadyTimeout:    time.Minute,
		StopTimeout:     time.Minute,
	}
}

func TestStartRestartStop(t *testing.T) {
	ctx := t.Context()
	opts := fakeOptions(t)
	opts.APIServerArgs = []string{"--tracing-config-file=/x/tracing.yaml"}
	t.Setenv("ETCD_VERSION", "v3.6.16") // etcd would read it as --version
	t.Setenv("OTEL_SDK_DISABLED", "true")
	cp, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })

	if !strings.HasPrefix(cp.EtcdURL, "http://127.0.0.1:") || !strings.HasPrefix(cp.APIServerURL, "https://127.0.0.1:") {
		t.Errorf("URLs = %q, %q; want loopback", cp.EtcdURL, cp.APIServerURL)
	}
	cmd := cp.APIServerCommand()
	if cmd[0] != opts.APIServerBinary || cmd[len(cmd)-1] != "--tracing-config-file=/x/tracing.yaml" {
		t.Errorf("APIServerCommand = %q; want binary first and extra args last", cmd)
	}
	if got := flagValue(cmd, "etcd-servers"); got != cp.EtcdURL {
		t.Errorf("--etcd-servers = %q, want %q", got, cp.EtcdURL)
	}
	if !slices.Contains(cmd, "--endpoint-reconciler-type=none") {
		t.Errorf("APIServerCommand lacks --endpoint-reconciler-type=none: %q", cmd)
	}

	// The client configurations trust the CA and carry the tokens.
	for _, c := range []struct {
		name string
		cfg  *rest.Config
	}{{"admin", cp.AdminConfig()}, {"user", cp.UserConfig()}} {
		hc, err := rest.HTTPClientFor(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		body, err := get(ctx, hc, cp.APIServerURL+"/readyz", "")
		if err != nil || body != "ok" {
			t.Errorf("%s GET /readyz = %q, %v; want ok", c.name, body, err)
		}
	}

	tokens, err := os.ReadFile(filepath.Join(cp.Dir, "pki", "tokens.csv"))
	if err != nil {
		t.Fatal(err)
	}
	wantTokens := cp.AdminToken + `,admin,uid-admin,"system:masters"` + "\n" + cp.UserToken + `,alice,uid-alice,"devs"` + "\n"
	if string(tokens) != wantTokens {
		t.Errorf("tokens.csv = %q, want %q", tokens, wantTokens)
	}

	oldPID, oldURL := cp.APIServerPID(), cp.APIServerURL
	if err := cp.RestartAPIServer(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if cp.APIServerPID() == oldPID || cp.APIServerURL != oldURL {
		t.Errorf("after restart pid %d (was %d), url %s (was %s); want new pid, same url", cp.APIServerPID(), oldPID, cp.APIServerURL, oldURL)
	}
	if cmd := cp.APIServerCommand(); flagValue(cmd, "tracing-config-file") != "" {
		t.Errorf("restart without extra args still has them: %q", cmd)
	}
	if err := cp.RestartEtcd(ctx, []string{"--log-level=info"}); err != nil {
		t.Fatal(err)
	}
	if got := cp.EtcdCommand(); got[len(got)-1] != "--log-level=info" {
		t.Errorf("EtcdCommand after restart = %q", got)
	}

	etcdPID := cp.EtcdPID()
	if err := cp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(etcdPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("etcd pid %d still exists after Stop (kill 0: %v)", etcdPID, err)
	}
	if err := cp.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	log, err := os.ReadFile(filepath.Join(cp.LogDir, "kube-apiserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "\n=== "); n != 2 {
		t.Errorf("kube-apiserver.log has %d start headers, want 2 (start + restart):\n%s", n, log)
	}
	etcdLog, err := os.ReadFile(filepath.Join(cp.LogDir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if all := string(log) + string(etcdLog); strings.Contains(all, "fake env:") {
		t.Errorf("children saw ETCD_* or OTEL_* variables:\n%s", all)
	}
	if n := strings.Count(string(log), "fake: SIGTERM"); n != 2 {
		t.Errorf("kube-apiserver.log shows %d SIGTERMs, want 2", n)
	}
	if _, err := os.Stat(opts.Dir); err != nil {
		t.Errorf("Stop removed a caller's directory: %v", err)
	}
}

func TestStartFailureCarriesLogAndCleansUp(t *testing.T) {
	opts := fakeOptions(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Start creates its directory
	opts.Dir = ""
	opts.EtcdArgs = []string{"--fail-now"}
	_, err := Start(t.Context(), opts)
	if err == nil {
		t.Fatal("Start succeeded with a failing etcd")
	}
	if !strings.Contains(err.Error(), "boom: cannot start") || !strings.Contains(err.Error(), "etcd not ready") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d entries left in TMPDIR after a failed Start: %v", len(left), left)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	t.Setenv("LOCALCP_FAKE", "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{
		name:    "stubborn",
		path:    self,
		args:    []string{"--ignore-sigterm", "--listen-client-urls=http://127.0.0.1:0"},
		logPath: filepath.Join(t.TempDir(), "stubborn.log"),
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child has set up its signal handling.
	for !strings.Contains(p.logTail(1024), "fake started") {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = p.stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "SIGKILL") {
		t.Errorf("stop = %v, want a SIGKILL error", err)
	}
	select {
	case <-p.exited():
	default:
		t.Error("process still running after stop")
	}
}

func TestServingPKI(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pki, err := newServingPKI(now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pki.caCert) {
		t.Fatal("CA PEM not parsable")
	}
	block, _ := pem.Decode(pki.cert)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now.Add(time.Hour)})
		if err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool, CurrentTime: now}); err == nil {
		t.Error("certificate verified for example.com")
	}
	if _, err := tls.X509KeyPair(pki.cert, pki.key); err != nil {
		t.Errorf("cert and key do not match: %v", err)
	}
	sa, err := newServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(sa); b == nil || b.Type != "EC PRIVATE KEY" {
		t.Fatalf("service-account key PEM = %q", sa)
	} else if _, err := x509.ParseECPrivateKey(b.Bytes); err != nil {
		t.Errorf("service-account key: %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ out, want string }{
		{"etcd Version: 3.6.16\nGit SHA: 1b2c3d4\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64\n", "v3.6.16"},
		{"etcd Version: 3.5.21\nGit SHA: Not provided (use ./build instead of go build)\n", "v3.5.21"},
		{"Kubernetes v1.37.2\n", "v1.37.2"},
		{"Kubernetes v1.33.5-rc.0\n", "v1.33.5-rc.0"},
		// A build without the gitVersion ldflags: parsed as is, so a caller sees it.
		{"Kubernetes v0.0.0-master+$Format:%H$\n", "v0.0.0-master+$Format:%H$"},
	}
	for _, tt := range tests {
		got, err := parseVersion(tt.out)
		if err != nil || got != tt.want {
			t.Errorf("parseVersion(%q) = %q, %v; want %q", tt.out, got, err, tt.want)
		}
	}
	if _, err := parseVersion("usage: foo\n"); err == nil {
		t.Error("parseVersion accepted text without a version")
	}
}

func TestBinaryVersion(t *testing.T) {
	t.Setenv("LOCALCP_FAKE", "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got, err := BinaryVersion(t.Context(), self)
	if err != nil || got != "v3.6.16" {
		t.Errorf("BinaryVersion = %q, %v; want v3.6.16", got, err)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("ports = %v; want 5 distinct positive ports", ports)
		}
		seen[p] = true
	}
}
