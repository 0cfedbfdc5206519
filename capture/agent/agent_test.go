package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/journal"
	"github.com/trace-capture/trace-capture/receiver/archive"
)

// journalRoot is excluded from snapshots: the journal folder stays (empty) after a restore.
const journalRoot = "/var/lib/trace-capture"

// fakeRestarter "restarts" a component on a fake node by giving its process a new PID.
type fakeRestarter struct {
	node *fakenode.Node
	// fail, if set, makes the call-th restart of c fail (call counts from 1: 1 is the enable, 2 the
	// restore).
	fail func(c enable.Component, call int) error

	mu      sync.Mutex
	log     []string
	calls   map[enable.Component]int
	nextPID int
}

func newFakeRestarter(n *fakenode.Node) *fakeRestarter {
	return &fakeRestarter{node: n, calls: map[enable.Component]int{}, nextPID: 9000}
}

func (f *fakeRestarter) Processes(ctx context.Context, c enable.Component) ([]int, error) {
	procs, err := enable.FindProcesses(ctx, f.node.Proc, string(c))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range procs {
		out = append(out, p.PID)
	}
	return out, nil
}

func (f *fakeRestarter) Restart(ctx context.Context, req RestartRequest) (RestartReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[req.Component]++
	n := f.calls[req.Component]
	f.log = append(f.log, fmt.Sprintf("%s#%d", req.Component, n))
	if f.fail != nil {
		if err := f.fail(req.Component, n); err != nil {
			return RestartReport{Method: "fake"}, err
		}
	}
	rep := RestartReport{Method: "fake", OldPIDs: req.Before, Health: req.Health.String()}
	for _, pid := range req.Before {
		f.nextPID++
		f.node.Replace(pid, f.nextPID)
		rep.NewPIDs = append(rep.NewPIDs, f.nextPID)
	}
	return rep, nil
}

func (f *fakeRestarter) calls_() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

var allComponents = []enable.Component{enable.APIServer, enable.Etcd, enable.Kubelet, enable.Containerd}

func newTestAgent(t *testing.T, n *fakenode.Node, r Restarter, mod func(*Options)) *Agent {
	t.Helper()
	opts := Options{
		NodeName:  n.Name,
		HostRoot:  n.Root,
		ProcRoot:  n.Proc,
		WorkDir:   t.TempDir(),
		Restarter: r,
		Listen:    "127.0.0.1:0",
	}
	if mod != nil {
		mod(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func enableReq(n *fakenode.Node, run string, deadline time.Duration, comps ...enable.Component) EnableRequest {
	versions := map[enable.Component]string{}
	for k, v := range n.Versions {
		versions[enable.Component(k)] = v
	}
	return EnableRequest{
		PlanRequest: PlanRequest{RunID: run, Components: comps, SamplingRatePerMillion: 1_000_000, Versions: versions},
		DeadlineIn:  Duration(deadline),
	}
}

// waitFor polls the agent until cond holds.
func waitFor(t *testing.T, a *Agent, what string, cond func(Status) bool) Status {
	t.Helper()
	for {
		st := a.Status()
		if cond(st) {
			return st
		}
		if err := t.Context().Err(); err != nil {
			t.Fatalf("waiting for %s: %v; last status: phase %s, errors %v", what, err, st.Phase, st.Errors)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func phaseIs(ps ...Phase) func(Status) bool {
	return func(st Status) bool { return slices.Contains(ps, st.Phase) }
}

func compPhases(st Status) map[enable.Component]ComponentPhase {
	out := map[enable.Component]ComponentPhase{}
	for _, c := range st.Components {
		out[c.Component] = c.Phase
	}
	return out
}

func assertSameNode(t *testing.T, n *fakenode.Node, before map[string]string) {
	t.Helper()
	if d := fakenode.Diff(before, n.Snapshot(journalRoot)); len(d) > 0 {
		t.Fatalf("the node differs from before the capture:\n%s", strings.Join(d, "\n"))
	}
}

func pendingRecords(t *testing.T, n *fakenode.Node) int {
	t.Helper()
	recs, err := enable.Pending(t.Context(), n.Root, journal.DefaultDir)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestEnableAndRestoreControlPlaneNode(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Runtime: fakenode.Containerd2, Systemd: true})
	before := n.Snapshot()
	r := newFakeRestarter(n)
	a := newTestAgent(t, n, r, nil)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	waitFor(t, a, "idle", phaseIs(PhaseIdle))

	st, err := a.Enable(enableReq(n, "run-1", time.Hour, allComponents...))
	if err != nil {
		t.Fatal(err)
	}
	if st.RunID != "run-1" {
		t.Fatalf("run id %q", st.RunID)
	}
	st = waitFor(t, a, "enabled", phaseIs(PhaseEnabled, PhaseRestored, PhaseRestoreFailed))
	if st.Phase != PhaseEnabled {
		t.Fatalf("phase %s, errors %v", st.Phase, st.Errors)
	}
	want := map[enable.Component]ComponentPhase{enable.Etcd: ComponentEnabled, enable.APIServer: ComponentEnabled, enable.Containerd: ComponentEnabled, enable.Kubelet: ComponentEnabled}
	if got := compPhases(st); !mapsEqual(got, want) {
		t.Fatalf("component phases %v, want %v", got, want)
	}
	// One component at a time, in enable order.
	if got, want := r.calls_(), []string{"etcd#1", "kube-apiserver#1", "containerd#1", "kubelet#1"}; !slices.Equal(got, want) {
		t.Fatalf("restarts %v, want %v", got, want)
	}
	addr := a.Receiver().GRPC
	etcd := string(n.ReadFile("/etc/kubernetes/manifests/etcd.yaml"))
	if !strings.Contains(etcd, "--enable-distributed-tracing=true") || !strings.Contains(etcd, "--distributed-tracing-address="+addr) {
		t.Fatalf("etcd manifest lacks the tracing flags towards %s:\n%s", addr, etcd)
	}
	if api := string(n.ReadFile("/etc/kubernetes/manifests/kube-apiserver.yaml")); !strings.Contains(api, "--tracing-config-file=") {
		t.Fatalf("kube-apiserver manifest lacks --tracing-config-file:\n%s", api)
	}
	if cfg := string(n.ReadFile("/var/lib/kubelet/config.yaml")); !strings.Contains(cfg, addr) {
		t.Fatalf("kubelet config does not export to %s:\n%s", addr, cfg)
	}
	if dropIn := string(n.ReadFile("/etc/systemd/system/containerd.service.d/99-trace-capture.conf")); !strings.Contains(dropIn, "OTEL_EXPORTER_OTLP") {
		t.Fatalf("containerd drop-in:\n%s", dropIn)
	}
	if got := pendingRecords(t, n); got != 4 {
		t.Fatalf("%d journal records, want 4", got)
	}
	// No backup, no journal in the static pod folder (the kubelet would start it as a pod).
	entries, _ := os.ReadDir(filepath.Join(n.Root, "etc/kubernetes/manifests"))
	if len(entries) != 2 {
		t.Fatalf("static pod folder holds %d files, want 2", len(entries))
	}

	// A span arrives.
	postSpans(t, "http://"+a.Receiver().HTTP, "kubelet")
	st = a.Status()
	if st.Stats.Spans != 1 {
		t.Fatalf("stats %+v", st.Stats)
	}

	done, err := a.Restore(RestoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	st = a.Status()
	if st.Phase != PhaseRestored || len(st.Errors) > 0 || st.PendingRecords != 0 {
		t.Fatalf("after restore: phase %s, pending %d, errors %v", st.Phase, st.PendingRecords, st.Errors)
	}
	for _, c := range st.Components {
		if c.Phase != ComponentRestored || c.RestoreRestart == nil {
			t.Fatalf("%s: phase %s restart %v", c.Component, c.Phase, c.RestoreRestart)
		}
	}
	if got, want := r.calls_()[4:], []string{"kubelet#2", "containerd#2", "kube-apiserver#2", "etcd#2"}; !slices.Equal(got, want) {
		t.Fatalf("restore restarts %v, want %v", got, want)
	}
	assertSameNode(t, n, before)
	if !st.Archive.Closed {
		t.Fatal("archive not closed after the restore")
	}
	var recs int
	if err := archive.ForEachFile(filepath.Join(a.opts.WorkDir, ArchiveFile), archive.ReaderOptions{}, func([]byte) error { recs++; return nil }); err != nil {
		t.Fatal(err)
	}
	if recs != 1 {
		t.Fatalf("archive holds %d records, want 1", recs)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// postSpans sends one span of service over OTLP/HTTP JSON.
func postSpans(t *testing.T, base, service string) {
	t.Helper()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},`+
		`"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"syncPod",`+
		`"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`, service)
	resp, err := http.Post(base+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP export: HTTP %d", resp.StatusCode)
	}
}

func TestEnableFailsOnSecondComponentRestoresFirst(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(n *fakenode.Node, r *fakeRestarter)
		// applied is true when the second component's change was written before it failed.
		wantErr string
	}{
		{
			name: "restart fails",
			breakIt: func(_ *fakenode.Node, r *fakeRestarter) {
				r.fail = func(c enable.Component, call int) error {
					if c == enable.APIServer && call == 1 {
						return errors.New("health check GET https://192.168.122.10:6443/readyz: connection refused")
					}
					return nil
				}
			},
			wantErr: "readyz",
		},
		{
			name: "plan fails",
			breakIt: func(n *fakenode.Node, _ *fakeRestarter) {
				// Someone's hand-edited manifest runs the apiserver through a shell.
				m := n.ReadFile("/etc/kubernetes/manifests/kube-apiserver.yaml")
				n.WriteFile("/etc/kubernetes/manifests/kube-apiserver.yaml", bytes.Replace(m, []byte("    - kube-apiserver\n"), []byte("    - sh\n    - -c\n    - kube-apiserver\n"), 1))
			},
			wantErr: "kube-apiserver",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
			r := newFakeRestarter(n)
			tc.breakIt(n, r)
			before := n.Snapshot()
			a := newTestAgent(t, n, r, nil)
			if err := a.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(context.Background())
			waitFor(t, a, "idle", phaseIs(PhaseIdle))
			if _, err := a.Enable(enableReq(n, "run-1", time.Hour, allComponents...)); err != nil {
				t.Fatal(err)
			}
			st := waitFor(t, a, "the end of the failed enable", phaseIs(PhaseRestored, PhaseRestoreFailed))
			if st.Phase != PhaseRestored {
				t.Fatalf("phase %s, errors %v", st.Phase, st.Errors)
			}
			if len(st.Errors) == 0 || !strings.Contains(strings.Join(st.Errors, "\n"), tc.wantErr) {
				t.Fatalf("errors %v do not mention %q", st.Errors, tc.wantErr)
			}
			if !strings.HasPrefix(st.RestoreReason, "enable failed") {
				t.Fatalf("restore reason %q", st.RestoreReason)
			}
			ph := compPhases(st)
			if ph[enable.Etcd] != ComponentRestored {
				t.Fatalf("etcd (enabled first) is %s, want restored", ph[enable.Etcd])
			}
			if ph[enable.Kubelet] != ComponentPlanned || ph[enable.Containerd] != ComponentPlanned {
				t.Fatalf("components after the failure were touched: %v", ph)
			}
			if !slices.Contains(r.calls_(), "etcd#2") {
				t.Fatalf("etcd was not restarted after its restore: %v", r.calls_())
			}
			assertSameNode(t, n, before)
			if got := pendingRecords(t, n); got != 0 {
				t.Fatalf("%d journal records left", got)
			}
		})
	}
}

func TestRestoreStepFailsKeepsJournal(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	before := n.Snapshot()
	r := newFakeRestarter(n)
	a := newTestAgent(t, n, r, nil)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	waitFor(t, a, "idle", phaseIs(PhaseIdle))
	if _, err := a.Enable(enableReq(n, "run-1", time.Hour, allComponents...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "enabled", phaseIs(PhaseEnabled))

	// During the window someone else edits the kubelet configuration: the restore must not
	// overwrite it, must restore everything else, and must keep the kubelet's journal record.
	edited := append(n.ReadFile("/var/lib/kubelet/config.yaml"), []byte("# edited by someone else\n")...)
	n.WriteFile("/var/lib/kubelet/config.yaml", edited)

	done, err := a.Restore(RestoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	st := a.Status()
	if st.Phase != PhaseRestoreFailed || st.PendingRecords != 1 {
		t.Fatalf("phase %s pending %d, want restore-failed with 1 record kept", st.Phase, st.PendingRecords)
	}
	if !strings.Contains(strings.Join(st.Errors, "\n"), "/var/lib/kubelet/config.yaml") {
		t.Fatalf("errors do not name the kubelet config: %v", st.Errors)
	}
	ph := compPhases(st)
	if ph[enable.Kubelet] != ComponentRestoreFailed || ph[enable.Etcd] != ComponentRestored || ph[enable.APIServer] != ComponentRestored || ph[enable.Containerd] != ComponentRestored {
		t.Fatalf("component phases %v", ph)
	}
	if st.Archive.Closed {
		t.Fatal("the receiver was stopped although a component may still export to it")
	}
	after := n.Snapshot(journalRoot)
	if d := fakenode.Diff(before, after); !slices.Equal(d, []string{"changed /var/lib/kubelet/config.yaml"}) {
		t.Fatalf("differences %v, want only the kubelet config (edited by someone else)", d)
	}

	// The operator decides: force the original back.
	done, err = a.Restore(RestoreRequest{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	st = a.Status()
	if st.Phase != PhaseRestored || st.PendingRecords != 0 {
		t.Fatalf("after a forced restore: phase %s pending %d errors %v", st.Phase, st.PendingRecords, st.Errors)
	}
	assertSameNode(t, n, before)
}

func TestRestoreRestartFailureIsReported(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	before := n.Snapshot()
	r := newFakeRestarter(n)
	r.fail = func(c enable.Component, call int) error {
		if c == enable.Containerd && call == 2 {
			return errors.New("systemctl restart containerd.service: exit status 1")
		}
		return nil
	}
	a := newTestAgent(t, n, r, nil)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	waitFor(t, a, "idle", phaseIs(PhaseIdle))
	if _, err := a.Enable(enableReq(n, "run-1", time.Hour, allComponents...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "enabled", phaseIs(PhaseEnabled))
	done, _ := a.Restore(RestoreRequest{})
	<-done
	st := a.Status()
	if st.Phase != PhaseRestoreFailed || !strings.Contains(strings.Join(st.Errors, "\n"), "systemctl restart containerd") {
		t.Fatalf("phase %s errors %v", st.Phase, st.Errors)
	}
	// The files are back nevertheless, and the other components were restarted.
	assertSameNode(t, n, before)
	for _, c := range []string{"kubelet#2", "kube-apiserver#2", "etcd#2"} {
		if !slices.Contains(r.calls_(), c) {
			t.Fatalf("%s missing from %v", c, r.calls_())
		}
	}
}

func TestAgentRecoversJournalOnStart(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	before := n.Snapshot()
	r := newFakeRestarter(n)
	ctx1, kill := context.WithCancel(t.Context())
	first := newTestAgent(t, n, r, nil)
	if err := first.Start(ctx1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, first, "idle", phaseIs(PhaseIdle))
	if _, err := first.Enable(enableReq(n, "run-1", time.Hour, allComponents...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, first, "enabled", phaseIs(PhaseEnabled))
	// The first agent dies without restoring (its pod was deleted with a zero grace period).
	kill()
	first.wg.Wait()

	second := newTestAgent(t, n, r, nil)
	if err := second.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer second.Shutdown(context.Background())
	st := waitFor(t, second, "the end of the recovery", phaseIs(PhaseIdle, PhaseRestoreFailed))
	if st.Phase != PhaseIdle || len(st.Recovered) != 4 || st.PendingRecords != 0 {
		t.Fatalf("phase %s, %d recovered, %d pending, errors %v", st.Phase, len(st.Recovered), st.PendingRecords, st.Errors)
	}
	for _, c := range st.Recovered {
		if c.Phase != ComponentRestored {
			t.Fatalf("%s recovered as %s: %s", c.Component, c.Phase, c.Error)
		}
	}
	assertSameNode(t, n, before)
	// And the recovered agent can run a capture.
	if _, err := second.Enable(enableReq(n, "run-2", time.Hour, enable.Kubelet)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, second, "enabled", phaseIs(PhaseEnabled))
}

func TestShutdownRestores(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "w-1", Runtime: fakenode.CRIO, Systemd: true})
	before := n.Snapshot()
	a := newTestAgent(t, n, newFakeRestarter(n), nil)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "idle", phaseIs(PhaseIdle))
	if _, err := a.Enable(enableReq(n, "run-1", time.Hour, enable.Kubelet, enable.CRIO)); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, a, "enabled", phaseIs(PhaseEnabled, PhaseRestored))
	if ph := compPhases(st); ph[enable.CRIO] != ComponentEnabled || ph[enable.Kubelet] != ComponentEnabled {
		t.Fatalf("phases %v errors %v", ph, st.Errors)
	}
	if _, err := os.Stat(filepath.Join(n.Root, "etc/crio/crio.conf.d", enable.CRIODropInName)); err != nil {
		t.Fatalf("CRI-O drop-in: %v", err)
	}
	// The pod is deleted: SIGTERM ends the agent's context.
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); st.Phase != PhaseRestored || st.RestoreReason != "agent stopping" {
		t.Fatalf("phase %s reason %q", st.Phase, st.RestoreReason)
	}
	assertSameNode(t, n, before)
}

// TestDeadManSwitch runs a 10-minute deadline in a synctest bubble: it takes no real time.
func TestDeadManSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
		before := n.Snapshot()
		a := newTestAgent(t, n, newFakeRestarter(n), func(o *Options) { o.noReceiver = true })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := a.Enable(enableReq(n, "run-1", 10*time.Minute, allComponents...)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := a.Status(); st.Phase != PhaseEnabled {
			t.Fatalf("phase %s errors %v", st.Phase, st.Errors)
		}
		start := time.Now()
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		if st := a.Status(); st.Phase != PhaseEnabled {
			t.Fatalf("after 9m: phase %s", st.Phase)
		}
		// The CLI checks in and moves the deadline (the window got longer).
		if err := a.SetDeadline(10 * time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(9*time.Minute + 59*time.Second)
		synctest.Wait()
		if st := a.Status(); st.Phase != PhaseEnabled {
			t.Fatalf("before the moved deadline: phase %s", st.Phase)
		}
		// Then the CLI vanishes (kill -9, lid closed).
		time.Sleep(2 * time.Second)
		synctest.Wait()
		st := a.Status()
		if st.Phase != PhaseRestored || !strings.Contains(st.RestoreReason, "deadline") {
			t.Fatalf("after the deadline: phase %s reason %q errors %v", st.Phase, st.RestoreReason, st.Errors)
		}
		if got := time.Since(start); got != 19*time.Minute+1*time.Second {
			t.Fatalf("fake clock advanced %s", got)
		}
		assertSameNode(t, n, before)
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRuntimesAndServiceManagers switches the node components on and off for each runtime and
// service manager: containerd 2.x under systemd (drop-in) and under a supervisor (environment
// file, as on the project's CI node), containerd 1.7 (config.toml), CRI-O (drop-in).
func TestRuntimesAndServiceManagers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    fakenode.Options
		envFile string
		runtime enable.Component
		method  enable.Method
		changed string
	}{
		{"containerd 2 systemd", fakenode.Options{Runtime: fakenode.Containerd2, Systemd: true}, "", enable.Containerd, enable.MethodSystemdDropIn, "/etc/systemd/system/containerd.service.d/99-trace-capture.conf"},
		{"containerd 2 supervisor", fakenode.Options{Runtime: fakenode.Containerd2, ContainerdEnvFile: "/run/tc/containerd.env"}, "/run/tc/containerd.env", enable.Containerd, enable.MethodEnvFile, "/run/tc/containerd.env"},
		{"containerd 1.7", fakenode.Options{Runtime: fakenode.Containerd17, Systemd: true}, "", enable.Containerd, enable.MethodContainerdConfig, "/etc/containerd/config.toml"},
		{"crio", fakenode.Options{Runtime: fakenode.CRIO, Systemd: true}, "", enable.CRIO, enable.MethodCRIODropIn, "/etc/crio/crio.conf.d/99-trace-capture.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Name = "w-1"
			n := fakenode.New(t, t.TempDir(), tc.opts)
			before := n.Snapshot()
			a := newTestAgent(t, n, newFakeRestarter(n), func(o *Options) { o.ContainerdEnvFile = tc.envFile })
			if err := a.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(context.Background())
			waitFor(t, a, "idle", phaseIs(PhaseIdle))
			if _, err := a.Enable(enableReq(n, "run-1", time.Hour, enable.Kubelet, tc.runtime)); err != nil {
				t.Fatal(err)
			}
			st := waitFor(t, a, "enabled", phaseIs(PhaseEnabled, PhaseRestored, PhaseRestoreFailed))
			if st.Phase != PhaseEnabled {
				t.Fatalf("phase %s errors %v", st.Phase, st.Errors)
			}
			cs, _ := st.Component(tc.runtime)
			if cs.Plan == nil || cs.Plan.Method != tc.method || !slices.Contains(cs.Files, tc.changed) {
				t.Fatalf("%s: plan %+v files %v", tc.runtime, cs.Plan, cs.Files)
			}
			if !bytes.Contains(n.ReadFile(tc.changed), []byte(a.Receiver().GRPC)) && !bytes.Contains(n.ReadFile(tc.changed), []byte(a.Receiver().HTTP)) {
				t.Fatalf("%s does not point at the receiver:\n%s", tc.changed, n.ReadFile(tc.changed))
			}
			done, _ := a.Restore(RestoreRequest{})
			<-done
			if st := a.Status(); st.Phase != PhaseRestored {
				t.Fatalf("phase %s errors %v", st.Phase, st.Errors)
			}
			assertSameNode(t, n, before)
		})
	}
}
