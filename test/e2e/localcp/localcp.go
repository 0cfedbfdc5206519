package localcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Users in the static token file.
const (
	// AdminUser is in the system:masters group: kube-apiserver trusts its
	// incoming trace context and continues the caller's trace.
	AdminUser = "admin"
	// User is an ordinary user (group "devs"): kube-apiserver starts a new
	// trace for its requests and links the caller's span instead.
	User = "alice"
)

// Defaults for Options fields left zero.
const (
	DefaultReadyTimeout = 2 * time.Minute
	DefaultStopTimeout  = 30 * time.Second
)

// Options configures Start.
type Options struct {
	// EtcdBinary and APIServerBinary are paths to the real binaries
	// (hack/build-component.sh prints them). Both are required.
	EtcdBinary      string
	APIServerBinary string

	// Dir holds the certificates, keys, token file, etcd data and logs. When
	// empty, Start creates a temporary directory and Stop removes it; a
	// directory given here is left in place.
	Dir string

	// EtcdArgs and APIServerArgs are appended to the command lines that
	// Start builds, for example tracing flags. A flag given here overrides
	// the same flag set by Start, as both binaries keep the last value.
	// The children inherit the caller's environment without ETCD_* and
	// OTEL_* variables, so the command line alone configures them.
	EtcdArgs      []string
	APIServerArgs []string

	// ReadyTimeout bounds the wait for each component to become ready
	// (etcd /health, kube-apiserver /readyz). Zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop and the Restart methods wait after
	// SIGTERM before SIGKILL. Zero means DefaultStopTimeout.
	StopTimeout time.Duration

	// Logger receives progress (starts, readiness, stops). Nil discards.
	Logger *slog.Logger
}

// ControlPlane is a running etcd and kube-apiserver started by Start. Its
// exported fields are set once by Start and must not be changed.
type ControlPlane struct {
	// Dir is the working directory (see Options.Dir).
	Dir string
	// EtcdURL is etcd's client URL, http://127.0.0.1:<port>.
	EtcdURL string
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string
	// CAData is the PEM certificate of the CA that signed kube-apiserver's
	// serving certificate; CAFile holds the same bytes.
	CAData []byte
	CAFile string
	// AdminToken authenticates AdminUser (system:masters), UserToken
	// authenticates User.
	AdminToken string
	UserToken  string
	// LogDir holds etcd.log and kube-apiserver.log; every (re)start appends
	// a "=== <time> <command line>" header line and the child's output.
	LogDir string

	opts       Options
	removeDir  bool
	logger     *slog.Logger
	etcd       *process
	apiserver  *process
	etcdPorts  [2]int // client, peer
	apiPort    int
	readyHTTPS *http.Client
}

// Start prepares the working directory, starts etcd and then kube-apiserver
// on free loopback ports, and returns when both are ready. On failure it
// stops whatever it started and the error carries the end of the failing
// component's log.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, retErr error) {
	if opts.EtcdBinary == "" || opts.APIServerBinary == "" {
		return nil, errors.New("start control plane: EtcdBinary and APIServerBinary are required")
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cp := &ControlPlane{opts: opts, logger: logger, Dir: opts.Dir}
	if cp.Dir == "" {
		dir, err := os.MkdirTemp("", "localcp-")
		if err != nil {
			return nil, fmt.Errorf("start control plane: create directory: %w", err)
		}
		cp.Dir, cp.removeDir = dir, true
	}
	defer func() {
		if retErr != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.StopTimeout)
			defer cancel()
			retErr = errors.Join(retErr, cp.Stop(sctx))
		}
	}()
	if err := cp.prepare(); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if err := cp.startEtcd(ctx); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	if err := cp.startAPIServer(ctx); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	return cp, nil
}

// prepare writes the PKI, the service-account key and the token file.
func (cp *ControlPlane) prepare() error {
	cp.LogDir = filepath.Join(cp.Dir, "logs")
	for _, d := range []string{cp.LogDir, filepath.Join(cp.Dir, "pki"), filepath.Join(cp.Dir, "apiserver-certs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// etcd refuses a data directory with wider permissions than 0700.
	if err := os.MkdirAll(cp.etcdDataDir(), 0o700); err != nil {
		return fmt.Errorf("create etcd data directory: %w", err)
	}
	pki, err := newServingPKI(time.Now(), 7*24*time.Hour)
	if err != nil {
		return err
	}
	saKey, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	cp.AdminToken, cp.UserToken = randomToken(), randomToken()
	tokens := fmt.Sprintf("%s,%s,uid-%s,\"system:masters\"\n%s,%s,uid-%s,\"devs\"\n",
		cp.AdminToken, AdminUser, AdminUser, cp.UserToken, User, User)
	cp.CAData, cp.CAFile = pki.caCert, cp.pki("ca.crt")
	files := []struct {
		path string
		data []byte
	}{
		{cp.CAFile, pki.caCert},
		{cp.pki("apiserver.crt"), pki.cert},
		{cp.pki("apiserver.key"), pki.key},
		{cp.pki("sa.key"), saKey},
		{cp.pki("tokens.csv"), []byte(tokens)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caCert)
	cp.readyHTTPS = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	cp.etcd = &process{name: "etcd", path: cp.opts.EtcdBinary, logPath: filepath.Join(cp.LogDir, "etcd.log")}
	cp.apiserver = &process{name: "kube-apiserver", path: cp.opts.APIServerBinary, logPath: filepath.Join(cp.LogDir, "kube-apiserver.log")}
	return nil
}

func (cp *ControlPlane) pki(name string) string { return filepath.Join(cp.Dir, "pki", name) }
func (cp *ControlPlane) etcdDataDir() string    { return filepath.Join(cp.Dir, "etcd-data") }

// etcdArgs is etcd's command line (without the binary) for the given extra
// arguments.
func (cp *ControlPlane) etcdArgs(extra []string) []string {
	client := "http://127.0.0.1:" + strconv.Itoa(cp.etcdPorts[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(cp.etcdPorts[1])
	args := []string{
		"--name=localcp",
		"--data-dir=" + cp.etcdDataDir(),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=localcp=" + peer,
		"--log-level=warn",
	}
	return append(args, extra...)
}

// apiserverArgs is kube-apiserver's command line (without the binary).
func (cp *ControlPlane) apiserverArgs(extra []string) []string {
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		"--etcd-servers=" + cp.EtcdURL,
		"--tls-cert-file=" + cp.pki("apiserver.crt"),
		"--tls-private-key-file=" + cp.pki("apiserver.key"),
		"--cert-dir=" + filepath.Join(cp.Dir, "apiserver-certs"),
		"--service-account-key-file=" + cp.pki("sa.key"),
		"--service-account-signing-key-file=" + cp.pki("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--token-auth-file=" + cp.pki("tokens.csv"),
		"--authorization-mode=AlwaysAllow",
		"--anonymous-auth=false",
		"--service-cluster-ip-range=10.96.0.0/24",
		// The default reconciler refuses a loopback advertise address.
		"--endpoint-reconciler-type=none",
	}
	return append(args, extra...)
}

// maxPortAttempts bounds retries when a free port is taken between choosing
// it and the child binding it.
const maxPortAttempts = 3

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= maxPortAttempts; attempt++ {
		ports, perr := freePorts(2)
		if perr != nil {
			return perr
		}
		cp.etcdPorts = [2]int{ports[0], ports[1]}
		cp.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		cp.etcd.args = cp.etcdArgs(cp.opts.EtcdArgs)
		err = cp.run(ctx, cp.etcd, cp.etcdReady)
		if err == nil || !cp.portTaken(cp.etcd) {
			return err
		}
		cp.logger.Warn("etcd port taken, retrying with other ports", "attempt", attempt)
	}
	return err
}

func (cp *ControlPlane) startAPIServer(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= maxPortAttempts; attempt++ {
		ports, perr := freePorts(1)
		if perr != nil {
			return perr
		}
		cp.apiPort = ports[0]
		cp.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		cp.apiserver.args = cp.apiserverArgs(cp.opts.APIServerArgs)
		err = cp.run(ctx, cp.apiserver, cp.apiserverReady)
		if err == nil || !cp.portTaken(cp.apiserver) {
			return err
		}
		cp.logger.Warn("kube-apiserver port taken, retrying with another port", "attempt", attempt)
	}
	return err
}

// portTaken reports whether p exited complaining that its address was in use.
func (cp *ControlPlane) portTaken(p *process) bool {
	select {
	case <-p.exited():
		return strings.Contains(p.logTail(4096), "address already in use")
	default:
		return false
	}
}

// run starts p and polls ready until it succeeds, p exits, or ReadyTimeout
// or ctx ends; in the last three cases p is stopped and the error includes
// the end of its log.
func (cp *ControlPlane) run(ctx context.Context, p *process, ready func(context.Context) error) error {
	began := time.Now()
	cp.logger.Info("starting "+p.name, "binary", p.path, "log", p.logPath)
	if err := p.start(); err != nil {
		return err
	}
	err := waitReady(ctx, cp.opts.ReadyTimeout, p.exited(), ready)
	if err == nil {
		cp.logger.Info(p.name+" ready", "pid", p.pid(), "after", time.Since(began).Round(time.Millisecond))
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cp.opts.StopTimeout)
	defer cancel()
	_ = p.stop(sctx)
	if exit := p.exitError(); exit != nil {
		err = fmt.Errorf("%w (%v)", err, exit)
	}
	return fmt.Errorf("%s not ready: %w; end of %s:\n%s", p.name, err, p.logPath, p.logTail(2048))
}

// waitReady polls ready every 250 ms until it returns nil. It fails when the
// process exits, when timeout passes or when ctx ends.
func waitReady(ctx context.Context, timeout time.Duration, exited <-chan struct{}, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (cp *ControlPlane) etcdReady(ctx context.Context) error {
	body, err := get(ctx, http.DefaultClient, cp.EtcdURL+"/health", "")
	if err != nil {
		return err
	}
	if !strings.Contains(body, `"health":"true"`) {
		return fmt.Errorf("etcd /health: %s", body)
	}
	return nil
}

func (cp *ControlPlane) apiserverReady(ctx context.Context) error {
	body, err := get(ctx, cp.readyHTTPS, cp.APIServerURL+"/readyz", cp.AdminToken)
	if err != nil {
		return err
	}
	if strings.TrimSpace(body) != "ok" {
		return fmt.Errorf("kube-apiserver /readyz: %s", body)
	}
	return nil
}

// get returns the body of a 200 answer to GET url.
func get(ctx context.Context, c *http.Client, url, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// RestartEtcd stops etcd and starts it again on the same ports and data with
// extraArgs in place of the previous extra arguments, then waits until it is
// ready. kube-apiserver reconnects by itself.
func (cp *ControlPlane) RestartEtcd(ctx context.Context, extraArgs []string) error {
	if err := cp.stopOne(ctx, cp.etcd); err != nil {
		return fmt.Errorf("restart etcd: %w", err)
	}
	cp.etcd.args = cp.etcdArgs(extraArgs)
	if err := cp.run(ctx, cp.etcd, cp.etcdReady); err != nil {
		return fmt.Errorf("restart etcd: %w", err)
	}
	return nil
}

// RestartAPIServer stops kube-apiserver and starts it again on the same port
// with extraArgs in place of the previous extra arguments, then waits until
// it is ready.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context, extraArgs []string) error {
	if err := cp.stopOne(ctx, cp.apiserver); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	cp.apiserver.args = cp.apiserverArgs(extraArgs)
	if err := cp.run(ctx, cp.apiserver, cp.apiserverReady); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	return nil
}

func (cp *ControlPlane) stopOne(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, cp.opts.StopTimeout)
	defer cancel()
	began := time.Now()
	err := p.stop(ctx)
	cp.logger.Info("stopped "+p.name, "after", time.Since(began).Round(time.Millisecond), "err", err)
	return err
}

// Stop stops kube-apiserver, then etcd, each with SIGTERM and, after
// StopTimeout or when ctx ends, SIGKILL; then it removes a directory that
// Start created. Stop may be called more than once. A caller stopping
// because of a cancelled context should pass context.WithoutCancel(ctx), or
// the children get no time to shut down cleanly.
func (cp *ControlPlane) Stop(ctx context.Context) error {
	var errs []error
	if cp.apiserver != nil {
		errs = append(errs, cp.stopOne(ctx, cp.apiserver))
	}
	if cp.etcd != nil {
		errs = append(errs, cp.stopOne(ctx, cp.etcd))
	}
	if cp.removeDir {
		if err := os.RemoveAll(cp.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", cp.Dir, err))
		}
		cp.removeDir = false
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop control plane: %w", err)
	}
	return nil
}

// EtcdCommand returns etcd's current command line, binary first.
func (cp *ControlPlane) EtcdCommand() []string {
	return append([]string{cp.etcd.path}, slices.Clone(cp.etcd.args)...)
}

// APIServerCommand returns kube-apiserver's current command line, binary
// first.
func (cp *ControlPlane) APIServerCommand() []string {
	return append([]string{cp.apiserver.path}, slices.Clone(cp.apiserver.args)...)
}

// EtcdPID and APIServerPID return the process ids of the current children
// (0 before the first start).
func (cp *ControlPlane) EtcdPID() int      { return cp.etcd.pid() }
func (cp *ControlPlane) APIServerPID() int { return cp.apiserver.pid() }

// AdminConfig returns a client configuration for AdminUser (system:masters).
// Each call returns a new copy that the caller may change.
func (cp *ControlPlane) AdminConfig() *rest.Config { return cp.restConfig(cp.AdminToken) }

// UserConfig returns a client configuration for the unprivileged User.
func (cp *ControlPlane) UserConfig() *rest.Config { return cp.restConfig(cp.UserToken) }

func (cp *ControlPlane) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            cp.APIServerURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: slices.Clone(cp.CAData)},
	}
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment
// ago. Another process may take one before the caller binds it; Start retries
// in that case.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
