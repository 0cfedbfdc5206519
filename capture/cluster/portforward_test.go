package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"

	"github.com/trace-capture/trace-capture/capture/agent"
	"github.com/trace-capture/trace-capture/capture/agent/fakenode"
)

// fakeKubelet serves pods/portforward as the API server and kubelet do (SPDY; it refuses the
// WebSocket tunnel, so the dialer falls back): each stream pair is connected to 127.0.0.1:port.
type fakeKubelet struct {
	mu       sync.Mutex
	conns    []httpstream.Connection
	dials    atomic.Int32
	requests []string
}

func (k *fakeKubelet) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	k.mu.Lock()
	k.requests = append(k.requests, req.Method+" "+req.URL.Path)
	k.mu.Unlock()
	if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "websockets not supported here", http.StatusBadRequest)
		return
	}
	if _, err := httpstream.Handshake(req, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	k.dials.Add(1)
	type pair struct{ data, errs httpstream.Stream }
	var pmu sync.Mutex
	pairs := map[string]*pair{}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, replySent <-chan struct{}) error {
		id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
		pmu.Lock()
		p := pairs[id]
		if p == nil {
			p = &pair{}
			pairs[id] = p
		}
		if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
			p.errs = s
		} else {
			p.data = s
		}
		ready := p.data != nil && p.errs != nil
		pmu.Unlock()
		if ready {
			port := s.Headers().Get(corev1.PortHeader)
			go func() {
				<-replySent
				forward(p.data, p.errs, port)
			}()
		}
		return nil
	})
	if conn == nil {
		return
	}
	k.mu.Lock()
	k.conns = append(k.conns, conn)
	k.mu.Unlock()
	<-conn.CloseChan()
}

func forward(data, errs httpstream.Stream, port string) {
	defer errs.Close()
	defer data.Close()
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintf(errs, "error forwarding port %s to pod: %v", port, err)
		return
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(c, data)
		c.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(data, c)
	<-done
}

// dropAll closes every port-forward connection, as an API server restart does.
func (k *fakeKubelet) dropAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

func TestPortForwardDialer(t *testing.T) {
	n := fakenode.New(t, t.TempDir(), fakenode.Options{Name: "cp-1", ControlPlane: true, Systemd: true})
	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{NodeName: "cp-1", HostRoot: n.Root, ProcRoot: n.Proc, WorkDir: t.TempDir(), Listen: "127.0.0.1:0",
			OnListening: func(a string) { addr <- a }})
	}()
	defer func() { cancel(); <-done }()
	_, portStr, _ := net.SplitHostPort(<-addr)
	port, _ := strconv.Atoi(portStr)

	k := &fakeKubelet{}
	srv := httptest.NewServer(k)
	defer srv.Close()
	defer k.dropAll()
	cfg := &rest.Config{Host: srv.URL}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := NewPortForwardDialer(cs, cfg)
	defer d.Close()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "trace-capture-agent-x", Namespace: "trace-capture-run"}}
	hc, base, err := d.Dial(t.Context(), pod, port)
	if err != nil {
		t.Fatal(err)
	}
	c := &agent.Client{BaseURL: base, HTTP: hc}
	var st agent.Status
	for {
		if st, err = c.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st.Phase != agent.PhaseRecovering {
			break
		}
	}
	if st.Node != "cp-1" || st.Phase != agent.PhaseIdle {
		t.Fatalf("status through the port-forward: %+v", st)
	}
	// Several requests share one port-forward connection.
	for range 3 {
		if _, err := c.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := k.dials.Load(); got != 1 {
		t.Fatalf("%d port-forward connections for 4 requests, want 1", got)
	}
	k.mu.Lock()
	path := k.requests[len(k.requests)-1]
	k.mu.Unlock()
	if path != "POST /api/v1/namespaces/trace-capture-run/pods/trace-capture-agent-x/portforward" {
		t.Fatalf("request %q", path)
	}
	// A streamed download.
	var buf bytes.Buffer
	if nbytes, _, err := c.Archive(t.Context(), &buf); err != nil || nbytes == 0 {
		t.Fatalf("archive: %d bytes, %v", nbytes, err)
	}
	// The API server restarts: the connection drops, the next request dials again.
	k.dropAll()
	var lastErr error
	ok := false
	for range 50 {
		if _, lastErr = c.Status(t.Context()); lastErr == nil {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("no status after the connection dropped: %v", lastErr)
	}
	if got := k.dials.Load(); got != 2 {
		t.Fatalf("%d port-forward connections, want 2 (one redial)", got)
	}
	// Nothing listens on the port: the kubelet's error comes back.
	hc2, base2, _ := d.Dial(t.Context(), pod, 1)
	_, err = (&agent.Client{BaseURL: base2, HTTP: hc2}).Status(t.Context())
	if err == nil || !strings.Contains(err.Error(), "error forwarding port 1") {
		t.Fatalf("error %v", err)
	}
}
