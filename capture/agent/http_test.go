package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/receiver/archive"
)

// runAgent runs an agent with Run on a loopback port and returns a client for it and a function
// that stops it (like the pod's SIGTERM) and returns Run's error.
func runAgent(t *testing.T, n *fakenode.Node, r Restarter) (*Client, string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan string, 1)
	work := t.TempDir()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{NodeName: n.Name, HostRoot: n.Root, ProcRoot: n.Proc, WorkDir: work, Restarter: r,
			Listen: "127.0.0.1:0", OnListening: func(a string) { addr <- a }})
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		cancel()
		t.Fatalf("agent did not start: %v", err)
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &Client{BaseURL: "http://" + a}, work, stop
}

func waitClient(t *testing.T, c *Client, what string, cond func(Status) bool) Status {
	t.Helper()
	for {
		st, err := c.Status(t.Context())
		if err == nil && cond(st) {
			return st
		}
		if t.Context().Err() != nil {
			t.Fatalf("waiting for %s: %v (last %s, %v)", what, err, st.Phase, st.Errors)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestControlAPI(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	before := n.Snapshot()
	c, _, stop := runAgent(t, n, newFakeRestarter(n))
	ctx := t.Context()
	st := waitClient(t, c, "idle", phaseIs(PhaseIdle))
	if st.Node != "cp-1" || st.Receiver.GRPC == "" || !strings.HasPrefix(st.Receiver.GRPC, "127.0.0.1:") {
		t.Fatalf("status %+v", st)
	}
	req := enableReq(n, "run-1", time.Hour, enable.APIServer, enable.Etcd, enable.Kubelet, enable.Containerd, enable.CRIO)
	np, err := c.Plan(ctx, req.PlanRequest)
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Plans) != 4 {
		t.Fatalf("%d plans: %+v", len(np.Plans), np)
	}
	if len(np.Skipped) != 1 || np.Skipped[0].Component != enable.CRIO || np.Skipped[0].Error {
		t.Fatalf("skipped %+v, want CRI-O (not running)", np.Skipped)
	}
	for _, p := range np.Plans {
		if len(p.Changes) == 0 || p.Restart.Kind == enable.RestartNone {
			t.Fatalf("plan of %s changes nothing: %+v", p.Component, p)
		}
	}
	// The plan changed nothing.
	assertSameNode(t, n, before)

	// Bad requests are refused with a reason.
	if _, err := c.Enable(ctx, EnableRequest{PlanRequest: req.PlanRequest}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("enable without a deadline: %v", err)
	}
	if _, err := c.Plan(ctx, PlanRequest{RunID: "Bad ID", Components: []enable.Component{enable.Kubelet}}); err == nil {
		t.Fatal("bad run id accepted")
	}
	if err := c.SetDeadline(ctx, time.Minute); !IsConflict(err) {
		t.Fatalf("deadline while idle: %v, want a conflict", err)
	}

	req.Components = []enable.Component{enable.APIServer, enable.Etcd, enable.Kubelet, enable.Containerd}
	if _, err := c.Enable(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Repeating the request (the CLI retries over a port-forward that broke) is harmless.
	if _, err := c.Enable(ctx, req); err != nil {
		t.Fatal(err)
	}
	other := req
	other.RunID = "run-2"
	if _, err := c.Enable(ctx, other); !IsConflict(err) {
		t.Fatalf("a second run while the first is on: %v", err)
	}
	st = waitClient(t, c, "enabled", phaseIs(PhaseEnabled))
	if err := c.SetDeadline(ctx, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	postSpans(t, "http://"+st.Receiver.HTTP, "apiserver")
	postSpans(t, "http://"+st.Receiver.HTTP, "etcd")

	// A snapshot of the archive while the receiver runs.
	var buf bytes.Buffer
	if _, closed, err := c.Archive(ctx, &buf); err != nil || closed {
		t.Fatalf("archive while recording: closed %v err %v", closed, err)
	}
	if err := archive.ForEach(bytes.NewReader(buf.Bytes()), archive.ReaderOptions{}, func([]byte) error { return nil }); err != nil && !errors.Is(err, archive.ErrTruncated) {
		t.Fatalf("archive snapshot: %v", err)
	}

	if _, err := c.Restore(ctx, RestoreRequest{Reason: "window over"}); err != nil {
		t.Fatal(err)
	}
	st = waitClient(t, c, "restored", phaseIs(PhaseRestored, PhaseRestoreFailed))
	if st.Phase != PhaseRestored || st.RestoreReason != "window over" {
		t.Fatalf("phase %s reason %q errors %v", st.Phase, st.RestoreReason, st.Errors)
	}
	assertSameNode(t, n, before)
	buf.Reset()
	if _, closed, err := c.Archive(ctx, &buf); err != nil || !closed {
		t.Fatalf("archive after the restore: closed %v err %v", closed, err)
	}
	recs := 0
	if err := archive.ForEach(bytes.NewReader(buf.Bytes()), archive.ReaderOptions{}, func([]byte) error { recs++; return nil }); err != nil || recs != 2 {
		t.Fatalf("archive: %d records, %v", recs, err)
	}
	var logs bytes.Buffer
	if _, err := c.Logs(ctx, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"component enabled", "restore complete", "receiver stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("agent log lacks %q:\n%s", want, logs.String())
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("agent stopped with %v", err)
	}
	// Unknown paths and methods.
	resp, err := http.Get(c.BaseURL + "/v1/nothing")
	if err == nil {
		resp.Body.Close()
		t.Fatal("agent still serving after it stopped")
	}
}

// TestCLIKilled is the SIGKILL of the CLI, in process: the CLI enables and then vanishes; the
// agent's dead man's switch restores the node on its own.
func TestCLIKilled(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	before := n.Snapshot()
	c, _, _ := runAgent(t, n, newFakeRestarter(n))
	waitClient(t, c, "idle", phaseIs(PhaseIdle))
	if _, err := c.Enable(t.Context(), enableReq(n, "run-1", 300*time.Millisecond, allComponents...)); err != nil {
		t.Fatal(err)
	}
	// The CLI is gone: nobody calls restore. Only status is polled here, as an observer.
	st := waitClient(t, c, "the dead man's switch", phaseIs(PhaseRestored, PhaseRestoreFailed))
	if st.Phase != PhaseRestored || !strings.Contains(st.RestoreReason, "deadline") {
		t.Fatalf("phase %s reason %q errors %v", st.Phase, st.RestoreReason, st.Errors)
	}
	assertSameNode(t, n, before)
	if got := pendingRecords(t, n); got != 0 {
		t.Fatalf("%d journal records left", got)
	}
}

// TestAgentKilledAndReplaced is the SIGKILL of an agent: its replacement restores from the journal
// when it starts.
func TestAgentKilledAndReplaced(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "w-1", Systemd: true})
	before := n.Snapshot()
	r := newFakeRestarter(n)
	ctx, kill := context.WithCancel(t.Context())
	a := newTestAgent(t, n, r, nil)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "idle", phaseIs(PhaseIdle))
	if _, err := a.Enable(enableReq(n, "run-1", time.Hour, enable.Kubelet, enable.Containerd)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "enabled", phaseIs(PhaseEnabled))
	kill() // SIGKILL: no Shutdown, no restore
	a.wg.Wait()
	if pendingRecords(t, n) != 2 {
		t.Fatal("the killed agent left no journal")
	}
	c, _, stop := runAgent(t, n, r)
	st := waitClient(t, c, "recovery", phaseIs(PhaseIdle, PhaseRestoreFailed))
	if st.Phase != PhaseIdle || len(st.Recovered) != 2 {
		t.Fatalf("phase %s recovered %d errors %v", st.Phase, len(st.Recovered), st.Errors)
	}
	assertSameNode(t, n, before)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
