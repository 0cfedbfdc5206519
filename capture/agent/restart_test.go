package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
)

func TestStaticPodRestartWaitsForNewProcessAndHealth(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{ControlPlane: true})
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() || r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	h := &HostRestarter{HostRoot: n.Root, ProcRoot: n.Proc, Poll: time.Millisecond}
	before, err := h.Processes(t.Context(), enable.APIServer)
	if err != nil || !slices.Equal(before, []int{fakenode.PIDAPIServer}) {
		t.Fatalf("processes %v %v", before, err)
	}
	// The kubelet replaces the pod a little later, and the new apiserver becomes ready later still.
	go func() {
		time.Sleep(20 * time.Millisecond)
		n.Replace(fakenode.PIDAPIServer, 5555)
		time.Sleep(20 * time.Millisecond)
		healthy.Store(true)
	}()
	rep, err := h.Restart(t.Context(), RestartRequest{Component: enable.APIServer, Restart: enable.Restart{Kind: enable.RestartStaticPod},
		Before: before, Health: HealthCheck{URL: srv.URL + "/readyz"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != "static-pod" || !slices.Equal(rep.NewPIDs, []int{5555}) || !healthy.Load() {
		t.Fatalf("report %+v healthy %v", rep, healthy.Load())
	}
}

func TestHealthCheckTimesOut(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{ControlPlane: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "etcd not ready", http.StatusInternalServerError)
	}))
	defer srv.Close()
	h := &HostRestarter{HostRoot: n.Root, ProcRoot: n.Proc, Poll: time.Millisecond, Timeout: 30 * time.Millisecond}
	_, err := h.Restart(t.Context(), RestartRequest{Component: enable.Etcd, Restart: enable.Restart{Kind: enable.RestartStaticPod},
		Health: HealthCheck{URL: srv.URL + "/readyz"}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "restart etcd") {
		t.Fatalf("error %v", err)
	}
}

func TestSystemdRestart(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Systemd: true})
	var cmds []string
	h := &HostRestarter{HostRoot: n.Root, ProcRoot: n.Proc, Poll: time.Millisecond,
		run: func(_ context.Context, name string, args ...string) ([]byte, error) {
			cmds = append(cmds, name+" "+strings.Join(args, " "))
			return nil, nil
		},
		signal: func(int, syscall.Signal) error { t.Fatal("signalled a systemd service"); return nil },
	}
	rep, err := h.Restart(t.Context(), RestartRequest{Component: enable.Containerd,
		Restart: enable.Restart{Kind: enable.RestartService, Unit: "containerd.service", DaemonReload: true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"systemctl daemon-reload", "systemctl restart containerd.service"}; !slices.Equal(cmds, want) {
		t.Fatalf("commands %v, want %v", cmds, want)
	}
	if rep.Method != "systemd" || rep.Unit != "containerd.service" {
		t.Fatalf("report %+v", rep)
	}
	// A failing systemctl is reported with its output.
	h.run = func(context.Context, string, ...string) ([]byte, error) {
		return []byte("Job for kubelet.service failed.\n"), errors.New("exit status 1")
	}
	_, err = h.Restart(t.Context(), RestartRequest{Component: enable.Kubelet, Restart: enable.Restart{Kind: enable.RestartService, Unit: "kubelet.service"}})
	if err == nil || !strings.Contains(err.Error(), "Job for kubelet.service failed") {
		t.Fatalf("error %v", err)
	}
}

func TestSignalRestartRefusesWithoutSupervisor(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{})
	// The kubelet was started by hand and reparented to init: nothing would start it again.
	n.Process(fakenode.PIDKubelet, 1, []string{"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"}, "0::/user.slice\n")
	h := &HostRestarter{HostRoot: n.Root, ProcRoot: n.Proc, Poll: time.Millisecond,
		signal: func(int, syscall.Signal) error { t.Fatal("signalled an unsupervised process"); return nil }}
	_, err := h.Restart(t.Context(), RestartRequest{Component: enable.Kubelet, Restart: enable.Restart{Kind: enable.RestartService, Unit: "kubelet.service"}})
	if !errors.Is(err, ErrNoSupervisor) {
		t.Fatalf("error %v, want ErrNoSupervisor", err)
	}
}

// TestSignalRestartRealProcess restarts a real process run by a supervisor loop (as on the
// project's CI node, which has no systemd): SIGTERM, then the supervisor starts it again.
func TestSignalRestartRealProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	// A program name no other process on the machine has.
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "tcfake-" + hex.EncodeToString(rnd[:])
	prog := filepath.Join(t.TempDir(), name)
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// The supervisor: this test process.
	var mu sync.Mutex
	var current *exec.Cmd
	stop := make(chan struct{})
	starts := make(chan int, 10)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			cmd := exec.Command(prog, "1000")
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			current = cmd
			mu.Unlock()
			starts <- cmd.Process.Pid
			_ = cmd.Wait()
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	defer func() {
		close(stop)
		mu.Lock()
		current.Process.Kill()
		mu.Unlock()
		wg.Wait()
	}()
	first := <-starts
	h := &HostRestarter{HostRoot: t.TempDir(), ProcRoot: "/proc", Poll: 5 * time.Millisecond,
		programs: map[enable.Component]string{enable.Kubelet: name}}
	before, err := h.Processes(t.Context(), enable.Kubelet)
	if err != nil || !slices.Equal(before, []int{first}) {
		t.Fatalf("processes %v %v, want [%d]", before, err, first)
	}
	rep, err := h.Restart(t.Context(), RestartRequest{Component: enable.Kubelet, Restart: enable.Restart{Kind: enable.RestartService, Unit: "kubelet.service"}, Before: before})
	if err != nil {
		t.Fatal(err)
	}
	second := <-starts
	if rep.Method != "signal" || !slices.Equal(rep.OldPIDs, []int{first}) || !slices.Equal(rep.NewPIDs, []int{second}) {
		t.Fatalf("report %+v, want %d -> %d", rep, first, second)
	}
}

func TestHealthFromKubeadmManifests(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{ControlPlane: true})
	nv := nodeView{hostRoot: n.Root, procRoot: n.Proc}
	for c, want := range map[enable.Component]string{
		enable.APIServer: "https://192.168.122.10:6443/readyz",
		enable.Etcd:      "http://127.0.0.1:2381/readyz",
		enable.Kubelet:   "http://127.0.0.1:10248/healthz",
	} {
		if got := nv.health(t.Context(), c); got.URL != want {
			t.Errorf("%s: health %+v, want %s", c, got, want)
		}
	}
}
