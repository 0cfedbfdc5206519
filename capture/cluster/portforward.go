package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// Dialer reaches an agent's loopback control port inside its pod.
type Dialer interface {
	// Dial returns an HTTP client whose requests reach port in pod, and the base URL to use.
	Dial(ctx context.Context, pod *corev1.Pod, port int) (*http.Client, string, error)
}

// PortForwardDialer reaches agents through the API server's pods/portforward (WebSockets, with
// SPDY as the fallback, as kubectl does), without a local listener: every HTTP connection is one
// port-forward stream pair. A lost connection (the API server restarts while its node is switched
// on) is dialled again on the next request.
type PortForwardDialer struct {
	Client kubernetes.Interface
	Config *rest.Config

	mu    sync.Mutex
	conns map[string]httpstream.Connection
	reqID atomic.Int64
}

// NewPortForwardDialer returns a dialer using the client's REST configuration.
func NewPortForwardDialer(c kubernetes.Interface, config *rest.Config) *PortForwardDialer {
	return &PortForwardDialer{Client: c, Config: config, conns: map[string]httpstream.Connection{}}
}

// Dial implements Dialer.
func (d *PortForwardDialer) Dial(_ context.Context, pod *corev1.Pod, port int) (*http.Client, string, error) {
	ns, name := pod.Namespace, pod.Name
	t := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.stream(ctx, ns, name, port)
		},
		ResponseHeaderTimeout: 2 * time.Minute,
	}
	return &http.Client{Transport: t}, "http://" + name, nil
}

// Close closes every port-forward connection.
func (d *PortForwardDialer) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, c := range d.conns {
		c.Close()
		delete(d.conns, k)
	}
}

func (d *PortForwardDialer) connection(ns, name string) (httpstream.Connection, error) {
	key := ns + "/" + name
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns == nil {
		d.conns = map[string]httpstream.Connection{}
	}
	if c := d.conns[key]; c != nil {
		select {
		case <-c.CloseChan():
			delete(d.conns, key)
		default:
			return c, nil
		}
	}
	req := d.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("portforward")
	u := req.URL()
	transport, upgrader, err := spdy.RoundTripperFor(d.Config)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", key, err)
	}
	var dialer httpstream.Dialer = spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if ws, err := portforward.NewSPDYOverWebsocketDialer(u, d.Config); err == nil {
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			// client-go returns the k8s.io/streaming flavour of the error; older ones apimachinery's.
			return streamhttp.IsUpgradeFailure(err) || httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	conn, proto, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", key, err)
	}
	if proto != portforward.PortForwardProtocolV1Name {
		conn.Close()
		return nil, fmt.Errorf("port-forward to %s: the server speaks %q", key, proto)
	}
	d.conns[key] = conn
	return conn, nil
}

func (d *PortForwardDialer) stream(ctx context.Context, ns, name string, port int) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := d.connection(ns, name)
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(d.reqID.Add(1), 10)
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(port))
	h.Set(corev1.PortForwardRequestIDHeader, id)
	errStream, err := conn.CreateStream(h)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("port-forward to %s/%s: create error stream: %w", ns, name, err)
	}
	errStream.Close() // nothing is written to it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.RemoveStreams(errStream)
		conn.Close()
		return nil, fmt.Errorf("port-forward to %s/%s: create data stream: %w", ns, name, err)
	}
	sc := &streamConn{conn: conn, data: data, errStream: errStream, errDone: make(chan struct{}), name: ns + "/" + name + ":" + strconv.Itoa(port)}
	go func() {
		msg, rerr := io.ReadAll(errStream)
		switch {
		case rerr != nil:
			sc.remoteErr = rerr
		case len(msg) > 0:
			sc.remoteErr = errors.New(strings.TrimSpace(string(msg)))
		}
		close(sc.errDone)
	}()
	return sc, nil
}

// streamConn is one forwarded connection.
type streamConn struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	errDone   chan struct{}
	remoteErr error
	name      string
	closeOnce sync.Once
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.data.Read(p)
	if err == io.EOF {
		select {
		case <-c.errDone:
			if c.remoteErr != nil {
				return n, fmt.Errorf("port-forward %s: %w", c.name, c.remoteErr)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) { return c.data.Write(p) }

func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.data.Reset()
		c.conn.RemoveStreams(c.data, c.errStream)
	})
	return nil
}

type pfAddr string

func (a pfAddr) Network() string { return "portforward" }
func (a pfAddr) String() string  { return string(a) }

func (c *streamConn) LocalAddr() net.Addr              { return pfAddr("local") }
func (c *streamConn) RemoteAddr() net.Addr             { return pfAddr(c.name) }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
