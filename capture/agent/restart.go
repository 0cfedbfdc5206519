package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/journal"
)

// ErrNoSupervisor is returned when a component would have to be restarted by a signal but nothing
// would start it again (its parent is PID 1 and systemd is not running): the agent refuses rather
// than leave the node without it.
var ErrNoSupervisor = errors.New("no supervisor would start it again")

// HealthCheck says how to tell that a component is up again.
type HealthCheck struct {
	// URL answers 2xx or 3xx when the component is healthy. TLS certificates are not verified, as
	// the kubelet's probes do not verify them.
	URL string `json:"url,omitempty"`
	// Socket is the node path of a unix socket that accepts connections when the component is up.
	Socket string `json:"socket,omitempty"`
}

func (h HealthCheck) String() string {
	switch {
	case h.URL != "":
		return "GET " + h.URL
	case h.Socket != "":
		return "connect unix:" + h.Socket
	}
	return "process running"
}

// RestartRequest is one restart.
type RestartRequest struct {
	Component enable.Component
	Restart   enable.Restart
	// Before are the component's processes from before the change (see Restarter.Processes).
	Before []int
	Health HealthCheck
}

// Restarter makes a configuration change of a component take effect.
type Restarter interface {
	// Processes returns the component's running processes, sorted.
	Processes(ctx context.Context, c enable.Component) ([]int, error)
	// Restart restarts the component (or, for a static pod, waits for the kubelet to recreate it)
	// and returns once it is healthy again.
	Restart(ctx context.Context, req RestartRequest) (RestartReport, error)
}

// HostRestarter restarts components on the node below HostRoot: a static pod is recreated by
// the kubelet when its manifest changes, so it waits for the old process to go and the new one
// to pass the health check; a service run by systemd is restarted with systemctl (run in the
// host's root with chroot); any other service is sent SIGTERM and its supervisor (the process
// that started it) is expected to start it again. The same code runs on a production node and on
// a node without systemd.
type HostRestarter struct {
	// HostRoot is the node's root file system ("/host" in the agent's pod).
	HostRoot string
	// ProcRoot is the node's proc file system; with hostPID, "/proc". Signals go to its PIDs.
	ProcRoot string
	// Timeout bounds one restart; zero means 3 minutes.
	Timeout time.Duration
	// Poll is the interval between checks; zero means one second.
	Poll time.Duration
	// KillAfter sends SIGKILL to a process that ignored SIGTERM this long; zero means 30 s.
	KillAfter time.Duration
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger

	// run runs a command in the host's root; nil means chroot + exec.
	run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// signal sends a signal; nil means syscall.Kill.
	signal func(pid int, sig syscall.Signal) error
	// client does the HTTP health checks; nil means one that skips TLS verification.
	client *http.Client
	// programs maps a component to its program name; nil means the component's name.
	programs map[enable.Component]string
}

var _ Restarter = (*HostRestarter)(nil)

func (h *HostRestarter) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func (h *HostRestarter) program(c enable.Component) string {
	if p, ok := h.programs[c]; ok {
		return p
	}
	return string(c)
}

func (h *HostRestarter) procRoot() string {
	if h.ProcRoot == "" {
		return "/proc"
	}
	return h.ProcRoot
}

func (h *HostRestarter) poll() time.Duration {
	if h.Poll <= 0 {
		return time.Second
	}
	return h.Poll
}

// Processes returns the PIDs of the component's program.
func (h *HostRestarter) Processes(ctx context.Context, c enable.Component) ([]int, error) {
	procs, err := enable.FindProcesses(ctx, h.procRoot(), h.program(c))
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	return pids, nil
}

// Restart implements Restarter.
func (h *HostRestarter) Restart(ctx context.Context, req RestartRequest) (RestartReport, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	rep := RestartReport{OldPIDs: req.Before, Health: req.Health.String()}
	var err error
	switch req.Restart.Kind {
	case enable.RestartNone, "":
		rep.Method = "none"
		return rep, nil
	case enable.RestartStaticPod:
		rep.Method = "static-pod"
		rep.NewPIDs, err = h.waitReplaced(ctx, req.Component, req.Before)
	case enable.RestartService:
		rep.NewPIDs, err = h.restartService(ctx, req, &rep)
	default:
		return rep, fmt.Errorf("restart %s: unknown restart kind %q", req.Component, req.Restart.Kind)
	}
	if err == nil {
		err = h.waitHealthy(ctx, req.Health)
	}
	rep.Took = Duration(time.Since(start))
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (gave up after %s)", err, timeout)
		}
		return rep, fmt.Errorf("restart %s: %w", req.Component, err)
	}
	h.log().Info("component restarted", "component", string(req.Component), "method", rep.Method, "took", time.Duration(rep.Took).Round(time.Millisecond))
	return rep, nil
}

func (h *HostRestarter) restartService(ctx context.Context, req RestartRequest, rep *RestartReport) ([]int, error) {
	procs, err := enable.FindProcesses(ctx, h.procRoot(), h.program(req.Component))
	if err != nil {
		return nil, err
	}
	unit := ""
	for _, p := range procs {
		if p.SystemdUnit != "" {
			unit = p.SystemdUnit
		}
	}
	if unit == "" && len(procs) == 0 {
		unit = req.Restart.Unit // not running: systemd may still know it
	}
	if enable.SystemdRunning(h.HostRoot) && unit != "" {
		rep.Method, rep.Unit = "systemd", unit
		if req.Restart.DaemonReload {
			if out, err := h.runHost(ctx, "systemctl", "daemon-reload"); err != nil {
				return nil, fmt.Errorf("systemctl daemon-reload: %w: %s", err, strings.TrimSpace(string(out)))
			}
		}
		if out, err := h.runHost(ctx, "systemctl", "restart", unit); err != nil {
			return nil, fmt.Errorf("systemctl restart %s: %w: %s", unit, err, strings.TrimSpace(string(out)))
		}
		return h.waitRunning(ctx, req.Component, nil)
	}
	rep.Method = "signal"
	if len(procs) == 0 {
		return nil, fmt.Errorf("%s is not running and systemd does not run it", h.program(req.Component))
	}
	var old []int
	for _, p := range procs {
		ppid, err := h.parent(p.PID)
		if err != nil {
			return nil, err
		}
		if ppid <= 1 {
			return nil, fmt.Errorf("%s (pid %d) is a child of pid %d and systemd is not running: %w", h.program(req.Component), p.PID, ppid, ErrNoSupervisor)
		}
		old = append(old, p.PID)
	}
	rep.OldPIDs = old
	for _, pid := range old {
		if err := h.sendSignal(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("signal %s (pid %d): %w", h.program(req.Component), pid, err)
		}
	}
	killAfter := h.KillAfter
	if killAfter <= 0 {
		killAfter = 30 * time.Second
	}
	killed := false
	kill := time.NewTimer(killAfter)
	defer kill.Stop()
	tick := time.NewTicker(h.poll())
	defer tick.Stop()
	for {
		pids, err := h.Processes(ctx, req.Component)
		if err != nil {
			return nil, err
		}
		if fresh := without(pids, old); len(fresh) > 0 && len(without(old, pids)) == len(old) {
			return fresh, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s to be started again by its supervisor: %w", h.program(req.Component), ctx.Err())
		case <-kill.C:
			if !killed {
				killed = true
				for _, pid := range old {
					if h.alive(pid) {
						h.log().Warn("process ignored SIGTERM: killing it", "component", string(req.Component), "pid", pid)
						_ = h.sendSignal(pid, syscall.SIGKILL)
					}
				}
			}
		case <-tick.C:
		}
	}
}

// waitReplaced waits until none of before runs any more and the component runs again.
func (h *HostRestarter) waitReplaced(ctx context.Context, c enable.Component, before []int) ([]int, error) {
	return h.waitRunning(ctx, c, before)
}

// waitRunning waits until the component runs in processes that are not in old, and none of old is
// left.
func (h *HostRestarter) waitRunning(ctx context.Context, c enable.Component, old []int) ([]int, error) {
	tick := time.NewTicker(h.poll())
	defer tick.Stop()
	for {
		pids, err := h.Processes(ctx, c)
		if err != nil {
			return nil, err
		}
		fresh := without(pids, old)
		if len(fresh) > 0 && len(fresh) == len(pids) {
			return fresh, nil
		}
		select {
		case <-ctx.Done():
			what := "to start"
			if len(old) > 0 {
				what = fmt.Sprintf("to replace pid %v", old)
			}
			return nil, fmt.Errorf("wait for %s %s: %w", h.program(c), what, ctx.Err())
		case <-tick.C:
		}
	}
}

func (h *HostRestarter) waitHealthy(ctx context.Context, hc HealthCheck) error {
	if hc.URL == "" && hc.Socket == "" {
		return nil
	}
	tick := time.NewTicker(h.poll())
	defer tick.Stop()
	var last error
	for {
		err := h.check(ctx, hc)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health check %s: %w (last: %v)", hc, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (h *HostRestarter) check(ctx context.Context, hc HealthCheck) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if hc.Socket != "" {
		var d net.Dialer
		conn, err := d.DialContext(cctx, "unix", journal.HostPath(h.HostRoot, hc.Socket))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, hc.URL, nil)
	if err != nil {
		return err
	}
	client := h.client
	if client == nil {
		client = probeClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// probeClient checks health like the kubelet's HTTP probes: no certificate verification, no
// proxy, no redirects followed off the host.
var probeClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's probes
		DisableKeepAlives: true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (h *HostRestarter) runHost(ctx context.Context, name string, args ...string) ([]byte, error) {
	if h.run != nil {
		return h.run(ctx, name, args...)
	}
	root := h.HostRoot
	if root == "" {
		root = "/"
	}
	path := ""
	for _, dir := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(filepath.Join(root, dir, name)); err == nil && !fi.IsDir() {
			path = filepath.Join(dir, name)
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("%s not found on the node", name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	if root != "/" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	}
	return cmd.CombinedOutput()
}

func (h *HostRestarter) sendSignal(pid int, sig syscall.Signal) error {
	if h.signal != nil {
		return h.signal(pid, sig)
	}
	return syscall.Kill(pid, sig)
}

// parent reads the parent PID from /proc/PID/stat.
func (h *HostRestarter) parent(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(h.procRoot(), strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read parent of pid %d: %w", pid, err)
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read parent of pid %d: malformed stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("read parent of pid %d: malformed stat", pid)
	}
	return strconv.Atoi(f[1])
}

func (h *HostRestarter) alive(pid int) bool {
	_, err := os.Stat(filepath.Join(h.procRoot(), strconv.Itoa(pid)))
	return err == nil
}

// without returns the elements of a not in b.
func without(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
