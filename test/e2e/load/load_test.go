package load

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func TestTracedRequestHeader(t *testing.T) {
	tests := []struct {
		tr   TracedRequest
		want string
	}{
		{TracedRequest{TraceID: AdminTraceID(1), SpanID: AdminSpanID(1), Sampled: true},
			"00-c0ffee00c0ffee00c0ffee0000000001-aa00000000000001-01"},
		{TracedRequest{TraceID: UserTraceID(12), SpanID: UserSpanID(12), Sampled: true},
			"00-deadbeefdeadbeefdeadbeef0000000c-bb0000000000000c-01"},
		{TracedRequest{TraceID: UnsampledTraceID, SpanID: "aa000000ffffffff"},
			"00-c0ffee00c0ffee00c0ffee00ffffffff-aa000000ffffffff-00"},
	}
	for _, tt := range tests {
		if got := tt.tr.Header(); got != tt.want {
			t.Errorf("Header() = %q, want %q", got, tt.want)
		}
		if len(tt.tr.TraceID) != 32 || len(tt.tr.SpanID) != 16 {
			t.Errorf("ids %q/%q are not 32/16 hex characters", tt.tr.TraceID, tt.tr.SpanID)
		}
	}
}

// TestClientHeaders checks the transport wrapper: the traceparent comes from
// the request's context only, the user agent is set, and every request is
// counted.
func TestClientHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-1","namespace":"ns"}}`))
	}))
	defer srv.Close()

	var count atomic.Int64
	cs, err := client(&rest.Config{Host: srv.URL}, &count)
	if err != nil {
		t.Fatal(err)
	}
	tr := TracedRequest{TraceID: AdminTraceID(3), SpanID: AdminSpanID(3), Sampled: true}
	ctx := t.Context()
	if _, err := cs.CoreV1().ConfigMaps("ns").Get(withTraceparent(ctx, tr.Header()), "cm-1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("ns").Get(ctx, "cm-1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if count.Load() != 2 || len(seen) != 2 {
		t.Fatalf("counted %d requests, server saw %d; want 2 and 2", count.Load(), len(seen))
	}
	if got := seen[0].Get("traceparent"); got != tr.Header() {
		t.Errorf("first request traceparent = %q, want %q", got, tr.Header())
	}
	if got := seen[1].Get("traceparent"); got != "" {
		t.Errorf("second request traceparent = %q, want none", got)
	}
	if ua := seen[0].Get("User-Agent"); !strings.HasPrefix(ua, UserAgent) {
		t.Errorf("User-Agent = %q, want %q", ua, UserAgent)
	}
}

func TestRunRequiresAdmin(t *testing.T) {
	if _, err := Run(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), "Admin is required") {
		t.Errorf("Run without Admin = %v", err)
	}
}

func TestSetDefaults(t *testing.T) {
	var o Options
	setDefaults(&o)
	if o.Duration != DefaultDuration || o.BigConfigMaps != 40 || o.BigConfigMapBytes != 300_000 || o.Prefix != DefaultPrefix {
		t.Errorf("defaults = %+v", o)
	}
	o = Options{Namespaces: 2, Duration: 5}
	setDefaults(&o)
	if o.Namespaces != 2 || o.Duration != 5 {
		t.Errorf("setDefaults overwrote given values: %+v", o)
	}
}
