package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// Defaults for Options fields left zero.
const (
	DefaultDuration               = 20 * time.Second
	DefaultPrefix                 = "tc-load"
	DefaultNamespaces             = 4
	DefaultConfigMapsPerNamespace = 5
	DefaultBigConfigMaps          = 40
	DefaultBigConfigMapBytes      = 300_000
	DefaultBigLists               = 3
	DefaultTracedRequests         = 5
	DefaultSteadyInterval         = 500 * time.Millisecond
)

// deleteReserve is the part of Duration kept for the delete phase.
const deleteReserve = 3 * time.Second

// UserAgent is the User-Agent of every request Run makes.
const UserAgent = "trace-capture-load/1"

// LabelKey and LabelValue mark every namespace and ConfigMap Run creates;
// the long watch selects on them.
const (
	LabelKey   = "app"
	LabelValue = "trace-capture-load"
)

// Options configures Run.
type Options struct {
	// Admin is a client configuration for a user in system:masters
	// (required). kube-apiserver trusts such a user's traceparent and
	// continues the caller's trace.
	Admin *rest.Config
	// User is a client configuration for an unprivileged user. When set,
	// some traced requests are sent as this user too; kube-apiserver starts
	// a new trace for them and links the caller's span.
	User *rest.Config

	// Duration is the target run time (default DefaultDuration). The fixed
	// phases always run; the steady phase fills what is left. Run gives up
	// after twice Duration plus 30 s whatever happens.
	Duration time.Duration
	// Prefix starts every namespace name (default DefaultPrefix). Runs
	// against the same etcd need different prefixes: namespaces stay
	// Terminating without a namespace controller.
	Prefix string
	// Namespaces and ConfigMapsPerNamespace size the small-object phase.
	Namespaces             int
	ConfigMapsPerNamespace int
	// BigConfigMaps of BigConfigMapBytes each are created in one namespace
	// and listed BigLists times (defaults 40, 300 KB, 3: a 12 MB LIST).
	BigConfigMaps     int
	BigConfigMapBytes int
	BigLists          int
	// TracedRequests is how many trace ids each traced group uses (default
	// DefaultTracedRequests).
	TracedRequests int
	// SteadyInterval is the pause between rounds of the steady phase.
	SteadyInterval time.Duration

	// Logger receives the phases. Nil discards.
	Logger *slog.Logger
}

// Result counts what Run did. Every field counts API calls that got the
// expected answer, except Requests (every HTTP request sent, watches
// included) and WatchEvents.
type Result struct {
	Requests          int
	Creates           int
	Gets              int
	Updates           int // PUT
	Patches           int // merge PATCH
	Lists             int // including BigLists and pages
	BigLists          int
	Deletes           int
	DeleteCollections int
	Watches           int
	WatchEvents       int
	Conflicts         int // 409: AlreadyExists on create, Conflict on a stale update
	NotFound          int // 404
	Discovery         int // /version, /healthz, /readyz, /api, /apis
	// Traced lists every request sent with a client traceparent, in order.
	Traced []TracedRequest
	// Namespaces are the names Run created (and deleted at the end).
	Namespaces []string
	Elapsed    time.Duration
}

// TracedRequest is one request sent with a W3C traceparent header.
type TracedRequest struct {
	// TraceID (32 hex) and SpanID (16 hex) are the caller's ids.
	TraceID string
	SpanID  string
	// Sampled is the traceparent's sampled flag.
	Sampled bool
	// Admin tells whether the request was sent as the system:masters user.
	Admin bool
	// Verb and Path describe the request, e.g. "GET" and
	// "/api/v1/namespaces/tc-load-1/configmaps/cm-1".
	Verb string
	Path string
}

// Header returns the traceparent header value.
func (t TracedRequest) Header() string {
	flags := "00"
	if t.Sampled {
		flags = "01"
	}
	return "00-" + t.TraceID + "-" + t.SpanID + "-" + flags
}

// AdminTraceID and AdminSpanID are the ids of the n-th (from 1) traced
// request group sent as the admin: c0ffee00c0ffee00c0ffee00000000NN and
// aa000000000000NN in hex. UserTraceID and UserSpanID are the same for the
// unprivileged user: deadbeefdeadbeefdeadbeef000000NN, bb000000000000NN.
// UnsampledTraceID is the one request sent with the sampled flag off.
func AdminTraceID(n int) string { return fmt.Sprintf("c0ffee00c0ffee00c0ffee00%08x", n) }
func AdminSpanID(n int) string  { return fmt.Sprintf("aa000000%08x", n) }
func UserTraceID(n int) string  { return fmt.Sprintf("deadbeefdeadbeefdeadbeef%08x", n) }
func UserSpanID(n int) string   { return fmt.Sprintf("bb000000%08x", n) }

// UnsampledTraceID is the trace id of the request sent with flags 00.
const UnsampledTraceID = "c0ffee00c0ffee00c0ffee00ffffffff"

type traceparentKey struct{}

// withTraceparent makes requests made with ctx carry the header.
func withTraceparent(ctx context.Context, header string) context.Context {
	return context.WithValue(ctx, traceparentKey{}, header)
}

// roundTripper counts requests and sets the traceparent header from the
// request's context.
type roundTripper struct {
	next  http.RoundTripper
	count *atomic.Int64
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.count.Add(1)
	if tp, ok := req.Context().Value(traceparentKey{}).(string); ok {
		req = req.Clone(req.Context())
		req.Header.Set("traceparent", tp)
	}
	return rt.next.RoundTrip(req)
}

// client builds a clientset from cfg without client-side rate limiting,
// counting requests into count.
func client(cfg *rest.Config, count *atomic.Int64) (*kubernetes.Clientset, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = -1, 0 // no client-side throttling
	c.UserAgent = UserAgent
	c.WrapTransport = transport.Wrappers(c.WrapTransport, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper{next: rt, count: count}
	})
	return kubernetes.NewForConfig(c)
}

// runner holds the state of one Run.
type runner struct {
	opts     Options
	log      *slog.Logger
	admin    *kubernetes.Clientset
	user     *kubernetes.Clientset
	requests atomic.Int64
	events   atomic.Int64

	mu  sync.Mutex
	res Result
}

func (r *runner) add(field *int, n int) {
	r.mu.Lock()
	*field += n
	r.mu.Unlock()
}

// Run drives the load and returns what it did. It stops at the first
// unexpected answer and returns the counts so far with the error.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Admin == nil {
		return Result{}, errors.New("run load: Admin is required")
	}
	setDefaults(&opts)
	r := &runner{opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if r.admin, err = client(opts.Admin, &r.requests); err != nil {
		return Result{}, fmt.Errorf("run load: admin client: %w", err)
	}
	if opts.User != nil {
		if r.user, err = client(opts.User, &r.requests); err != nil {
			return Result{}, fmt.Errorf("run load: user client: %w", err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*opts.Duration+30*time.Second)
	defer cancel()
	err = r.run(ctx, start.Add(opts.Duration))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Requests = int(r.requests.Load())
	r.res.WatchEvents = int(r.events.Load())
	r.res.Elapsed = time.Since(start)
	if err != nil {
		return r.res, fmt.Errorf("run load: %w", err)
	}
	return r.res, nil
}

func setDefaults(o *Options) {
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Namespaces, DefaultNamespaces)
	def(&o.ConfigMapsPerNamespace, DefaultConfigMapsPerNamespace)
	def(&o.BigConfigMaps, DefaultBigConfigMaps)
	def(&o.BigConfigMapBytes, DefaultBigConfigMapBytes)
	def(&o.BigLists, DefaultBigLists)
	def(&o.TracedRequests, DefaultTracedRequests)
	if o.SteadyInterval <= 0 {
		o.SteadyInterval = DefaultSteadyInterval
	}
}

func (r *runner) ns(i int) string { return r.opts.Prefix + "-" + strconv.Itoa(i) }
func (r *runner) bulkNS() string  { return r.opts.Prefix + "-bulk" }
func cmName(j int) string         { return "cm-" + strconv.Itoa(j) }

func (r *runner) run(ctx context.Context, end time.Time) error {
	// A watch over every ConfigMap the run labels stays open for the whole
	// run: the long-lived request that an analyzer must not call slow.
	longWatch, longDone, err := r.watch(ctx, "", LabelKey+"="+LabelValue)
	if err != nil {
		return fmt.Errorf("open long watch: %w", err)
	}
	defer func() {
		longWatch.Stop()
		<-longDone
	}()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"small objects", r.smallObjects},
		{"watch while patching", r.watchWhilePatching},
		{"big objects", r.bigObjects},
		{"traced requests", r.tracedRequests},
		{"discovery", r.discovery},
		{"steady", func(ctx context.Context) error { return r.steady(ctx, end.Add(-deleteReserve)) }},
		{"deletes", r.deletes},
	}
	for _, s := range steps {
		began := time.Now()
		before := r.requests.Load()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.log.Info("load phase done", "phase", s.name, "requests", r.requests.Load()-before,
			"took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

func (r *runner) smallObjects(ctx context.Context) error {
	cms := r.admin.CoreV1()
	for i := 1; i <= r.opts.Namespaces; i++ {
		ns := r.ns(i)
		if _, err := cms.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{LabelKey: LabelValue},
		}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		r.add(&r.res.Creates, 1)
		r.mu.Lock()
		r.res.Namespaces = append(r.res.Namespaces, ns)
		r.mu.Unlock()

		var stale *corev1.ConfigMap
		for j := 1; j <= r.opts.ConfigMapsPerNamespace; j++ {
			name := cmName(j)
			cm := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelKey: LabelValue, "idx": strconv.Itoa(j)}},
				Data:       map[string]string{"k": "v" + strconv.Itoa(j)},
			}
			if _, err := cms.ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create configmap %s/%s: %w", ns, name, err)
			}
			got, err := cms.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("get configmap %s/%s: %w", ns, name, err)
			}
			if j == 1 {
				stale = got.DeepCopy()
			}
			got.Labels["updated"] = "true"
			got.Data["k"] = "v" + strconv.Itoa(j) + "-updated"
			if _, err := cms.ConfigMaps(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update configmap %s/%s: %w", ns, name, err)
			}
			if _, err := cms.ConfigMaps(ns).Patch(ctx, name, types.MergePatchType,
				[]byte(`{"data":{"patched":"yes"}}`), metav1.PatchOptions{}); err != nil {
				return fmt.Errorf("patch configmap %s/%s: %w", ns, name, err)
			}
			r.add(&r.res.Creates, 1)
			r.add(&r.res.Gets, 1)
			r.add(&r.res.Updates, 1)
			r.add(&r.res.Patches, 1)
		}
		for j := 1; j <= 3; j++ {
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "s-" + strconv.Itoa(j)},
				Type:       corev1.SecretTypeOpaque,
				StringData: map[string]string{"password": "p" + strconv.Itoa(j)},
			}
			if _, err := cms.Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create secret %s/%s: %w", ns, s.Name, err)
			}
			r.add(&r.res.Creates, 1)
		}
		if _, err := cms.Secrets(ns).Get(ctx, "s-1", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("get secret %s/s-1: %w", ns, err)
		}
		r.add(&r.res.Gets, 1)
		if _, err := cms.ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list configmaps in %s: %w", ns, err)
		}
		if _, err := cms.ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "idx=1"}); err != nil {
			return fmt.Errorf("list configmaps in %s by label: %w", ns, err)
		}
		if _, err := cms.Secrets(ns).List(ctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list secrets in %s: %w", ns, err)
		}
		r.add(&r.res.Lists, 3)

		// 409 twice: creating an object that exists, and updating from a
		// stale copy (the optimistic-concurrency conflict controllers hit).
		_, err := cms.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName(1)}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create existing configmap %s/cm-1: want 409 AlreadyExists, got %v", ns, err)
		}
		stale.Data["stale"] = "yes"
		_, err = cms.ConfigMaps(ns).Update(ctx, stale, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("stale update of %s/cm-1: want 409 Conflict, got %v", ns, err)
		}
		r.add(&r.res.Conflicts, 2)
		_, err = cms.ConfigMaps(ns).Get(ctx, "does-not-exist", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get missing configmap in %s: want 404, got %v", ns, err)
		}
		r.add(&r.res.NotFound, 1)
	}
	return nil
}

// watch opens a ConfigMap watch (all namespaces when ns is empty) and counts
// its events until it is stopped; done is closed when the counting ends.
func (r *runner) watch(ctx context.Context, ns, selector string) (watch.Interface, <-chan struct{}, error) {
	w, err := r.admin.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, nil, err
	}
	r.add(&r.res.Watches, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if ev.Type != watch.Error {
				r.events.Add(1)
			}
		}
	}()
	return w, done, nil
}

func (r *runner) watchWhilePatching(ctx context.Context) error {
	ns := r.ns(1)
	w, done, err := r.watch(ctx, ns, "")
	if err != nil {
		return fmt.Errorf("watch configmaps in %s: %w", ns, err)
	}
	defer func() {
		w.Stop()
		<-done
	}()
	before := r.events.Load()
	n := r.opts.ConfigMapsPerNamespace
	for j := 1; j <= n; j++ {
		patch := fmt.Sprintf(`{"data":{"watched":"%d"}}`, j)
		if _, err := r.admin.CoreV1().ConfigMaps(ns).Patch(ctx, cmName(j), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("patch configmap %s/%s: %w", ns, cmName(j), err)
		}
		r.add(&r.res.Patches, 1)
	}
	// Both watches see every patch; wait a little for the events to arrive.
	deadline := time.Now().Add(3 * time.Second)
	for r.events.Load()-before < int64(n) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (r *runner) bigObjects(ctx context.Context) error {
	core := r.admin.CoreV1()
	ns := r.bulkNS()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{LabelKey: LabelValue},
	}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	r.add(&r.res.Creates, 1)
	r.mu.Lock()
	r.res.Namespaces = append(r.res.Namespaces, ns)
	r.mu.Unlock()
	blob := strings.Repeat("x", r.opts.BigConfigMapBytes)
	for j := 1; j <= r.opts.BigConfigMaps; j++ {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "big-" + strconv.Itoa(j), Labels: map[string]string{"size": "big"}},
			Data:       map[string]string{"blob": blob},
		}
		if _, err := core.ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create configmap %s/%s: %w", ns, cm.Name, err)
		}
		r.add(&r.res.Creates, 1)
	}
	for k := 0; k < r.opts.BigLists; k++ {
		// From etcd (a quorum read), then from the watch cache.
		for _, rv := range []string{"", "0"} {
			l, err := core.ConfigMaps(ns).List(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				return fmt.Errorf("list %s (resourceVersion=%q): %w", ns, rv, err)
			}
			if len(l.Items) != r.opts.BigConfigMaps {
				return fmt.Errorf("list %s: %d items, want %d", ns, len(l.Items), r.opts.BigConfigMaps)
			}
			r.add(&r.res.Lists, 1)
			r.add(&r.res.BigLists, 1)
		}
	}
	// A cluster-wide list, then the same in pages of 10.
	if _, err := core.ConfigMaps("").List(ctx, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("list all configmaps: %w", err)
	}
	r.add(&r.res.Lists, 1)
	opts := metav1.ListOptions{Limit: 10}
	for {
		l, err := core.ConfigMaps("").List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list all configmaps by pages: %w", err)
		}
		r.add(&r.res.Lists, 1)
		if l.Continue == "" {
			return nil
		}
		opts.Continue = l.Continue
	}
}

func (r *runner) tracedRequests(ctx context.Context) error {
	core := r.admin.CoreV1()
	ns := r.ns(min(2, r.opts.Namespaces))
	record := func(t TracedRequest) context.Context {
		r.mu.Lock()
		r.res.Traced = append(r.res.Traced, t)
		r.mu.Unlock()
		return withTraceparent(ctx, t.Header())
	}
	for n := 1; n <= r.opts.TracedRequests; n++ {
		tid, sid := AdminTraceID(n), AdminSpanID(n)
		tctx := record(TracedRequest{TraceID: tid, SpanID: sid, Sampled: true, Admin: true,
			Verb: http.MethodGet, Path: "/api/v1/namespaces/" + ns + "/configmaps/cm-1"})
		if _, err := core.ConfigMaps(ns).Get(tctx, "cm-1", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("traced get: %w", err)
		}
		r.add(&r.res.Gets, 1)
		tctx = record(TracedRequest{TraceID: tid, SpanID: sid, Sampled: true, Admin: true,
			Verb: http.MethodPost, Path: "/api/v1/namespaces/" + ns + "/configmaps"})
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "traced-" + strconv.Itoa(n)}, Data: map[string]string{"k": "v"}}
		if _, err := core.ConfigMaps(ns).Create(tctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("traced create: %w", err)
		}
		r.add(&r.res.Creates, 1)
	}
	if r.user != nil {
		ucore := r.user.CoreV1()
		for n := 1; n <= r.opts.TracedRequests; n++ {
			tid, sid := UserTraceID(n), UserSpanID(n)
			tctx := record(TracedRequest{TraceID: tid, SpanID: sid, Sampled: true,
				Verb: http.MethodGet, Path: "/api/v1/namespaces/" + ns + "/configmaps/cm-1"})
			if _, err := ucore.ConfigMaps(ns).Get(tctx, "cm-1", metav1.GetOptions{}); err != nil {
				return fmt.Errorf("traced get as user: %w", err)
			}
			r.add(&r.res.Gets, 1)
			tctx = record(TracedRequest{TraceID: tid, SpanID: sid, Sampled: true,
				Verb: http.MethodGet, Path: "/api/v1/namespaces/" + ns + "/secrets"})
			if _, err := ucore.Secrets(ns).List(tctx, metav1.ListOptions{}); err != nil {
				return fmt.Errorf("traced list as user: %w", err)
			}
			r.add(&r.res.Lists, 1)
		}
	}
	// The caller says "not sampled": a parent-based sampler drops it.
	tctx := record(TracedRequest{TraceID: UnsampledTraceID, SpanID: "aa000000ffffffff", Admin: true,
		Verb: http.MethodGet, Path: "/api/v1/namespaces/" + ns + "/configmaps/cm-2"})
	if _, err := core.ConfigMaps(ns).Get(tctx, "cm-2", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("unsampled traced get: %w", err)
	}
	r.add(&r.res.Gets, 1)
	return nil
}

func (r *runner) discovery(ctx context.Context) error {
	rc := r.admin.Discovery().RESTClient()
	for _, p := range []string{"/healthz", "/readyz", "/version", "/api", "/apis"} {
		if _, err := rc.Get().AbsPath(p).DoRaw(ctx); err != nil {
			return fmt.Errorf("GET %s: %w", p, err)
		}
		r.add(&r.res.Discovery, 1)
	}
	return nil
}

// steady sends a controller-like trickle until until: get and patch a
// ConfigMap, list Secrets from the watch cache, renew a Lease.
func (r *runner) steady(ctx context.Context, until time.Time) error {
	core := r.admin.CoreV1()
	leases := r.admin.CoordinationV1().Leases(r.ns(1))
	holder, secs := "trace-capture-load", int32(15)
	if _, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "trace-capture-load"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create lease: %w", err)
	}
	r.add(&r.res.Creates, 1)
	name := cmName(min(3, r.opts.ConfigMapsPerNamespace))
	for n := 1; time.Now().Before(until); n++ {
		ns := r.ns(n%r.opts.Namespaces + 1)
		if _, err := core.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("get configmap %s/%s: %w", ns, name, err)
		}
		if _, err := core.ConfigMaps(ns).Patch(ctx, name, types.MergePatchType,
			[]byte(fmt.Sprintf(`{"data":{"tick":"%d"}}`, n)), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("patch configmap %s/%s: %w", ns, name, err)
		}
		if _, err := core.Secrets(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"}); err != nil {
			return fmt.Errorf("list secrets in %s: %w", ns, err)
		}
		renew := fmt.Sprintf(`{"spec":{"renewTime":"%s"}}`, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
		if _, err := leases.Patch(ctx, "trace-capture-load", types.MergePatchType, []byte(renew), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("renew lease: %w", err)
		}
		r.add(&r.res.Gets, 1)
		r.add(&r.res.Patches, 2)
		r.add(&r.res.Lists, 1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.opts.SteadyInterval):
		}
	}
	return nil
}

func (r *runner) deletes(ctx context.Context) error {
	core := r.admin.CoreV1()
	for i := 1; i <= r.opts.Namespaces; i++ {
		ns := r.ns(i)
		for j := 1; j <= min(2, r.opts.ConfigMapsPerNamespace); j++ {
			if err := core.ConfigMaps(ns).Delete(ctx, cmName(j), metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("delete configmap %s/%s: %w", ns, cmName(j), err)
			}
			r.add(&r.res.Deletes, 1)
		}
		if err := core.ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "updated=true"}); err != nil {
			return fmt.Errorf("deletecollection configmaps in %s: %w", ns, err)
		}
		r.add(&r.res.DeleteCollections, 1)
		if err := core.Secrets(ns).Delete(ctx, "s-1", metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete secret %s/s-1: %w", ns, err)
		}
		r.add(&r.res.Deletes, 1)
	}
	if err := core.ConfigMaps(r.bulkNS()).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deletecollection configmaps in %s: %w", r.bulkNS(), err)
	}
	r.add(&r.res.DeleteCollections, 1)
	r.mu.Lock()
	names := append([]string(nil), r.res.Namespaces...)
	r.mu.Unlock()
	for _, ns := range names {
		// Without a namespace controller the namespace stays Terminating.
		if err := core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
		r.add(&r.res.Deletes, 1)
	}
	return nil
}
