//go:build e2e

package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/trace-capture/trace-capture/test/e2e/load"
	"github.com/trace-capture/trace-capture/test/e2e/localcp"
)

// handTracingArgs returns tracing flags for etcd and kube-apiserver written by
// hand, and writes the TracingConfiguration file into dir. It stands in for
// the project's enable code until that is wired in; it follows the same
// rules: etcd 3.5 only knows the --experimental- spellings, and
// apiserver.config.k8s.io/v1 exists from Kubernetes 1.34 on (v1beta1 before).
func handTracingArgs(t testing.TB, etcdVersion, kubeVersion, dir, endpoint string) (etcdArgs, apiArgs []string) {
	t.Helper()
	prefix := ""
	if strings.HasPrefix(etcdVersion, "v3.5.") || strings.HasPrefix(etcdVersion, "v3.4.") {
		prefix = "experimental-"
	}
	etcdArgs = []string{
		"--" + prefix + "enable-distributed-tracing=true",
		"--" + prefix + "distributed-tracing-address=" + endpoint,
		"--" + prefix + "distributed-tracing-service-name=etcd",
		"--" + prefix + "distributed-tracing-instance-id=etcd-0",
		"--" + prefix + "distributed-tracing-sampling-rate=1000000",
	}
	apiVersion := "apiserver.config.k8s.io/v1"
	if minor, err := strconv.Atoi(strings.Split(strings.TrimPrefix(kubeVersion, "v1."), ".")[0]); err == nil && minor < 34 {
		apiVersion = "apiserver.config.k8s.io/v1beta1"
	}
	cfg := fmt.Sprintf("apiVersion: %s\nkind: TracingConfiguration\nendpoint: %s\nsamplingRatePerMillion: 1000000\n", apiVersion, endpoint)
	path := filepath.Join(dir, "tracing.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return etcdArgs, []string{"--tracing-config-file=" + path}
}

func loadDuration(t testing.TB) time.Duration {
	d := 15 * time.Second
	if s := os.Getenv("E2E_LOAD_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("E2E_LOAD_DURATION: %v", err)
		}
		d = v
	}
	return d
}

// TestRealComponentsExportSpans runs real etcd and kube-apiserver with tracing
// on, drives the load, and checks what a person would check in the spans:
// both services export, apiserver CLIENT spans join etcd SERVER spans, the
// admin's traceparent is continued and the user's only linked, the big LIST
// and the write paths are there. Then it restarts both without the tracing
// flags and checks that nothing more arrives.
func TestRealComponentsExportSpans(t *testing.T) {
	ctx := t.Context()
	sink := startOTLPSink(t)
	etcdBin, apiBin := componentBinary(t, "etcd"), componentBinary(t, "kube-apiserver")
	etcdVersion, err := localcp.BinaryVersion(ctx, etcdBin)
	if err != nil {
		t.Fatal(err)
	}
	kubeVersion, err := localcp.BinaryVersion(ctx, apiBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd %s, kube-apiserver %s, receiver %s", etcdVersion, kubeVersion, sink.addr)

	dir := t.TempDir()
	etcdArgs, apiArgs := handTracingArgs(t, etcdVersion, kubeVersion, dir, sink.addr)
	began := time.Now()
	cp := startControlPlane(t, localcp.Options{
		EtcdBinary: etcdBin, APIServerBinary: apiBin, Dir: dir,
		EtcdArgs: etcdArgs, APIServerArgs: apiArgs,
	})
	t.Logf("control plane ready in %s", time.Since(began).Round(time.Millisecond))

	res, err := load.Run(ctx, load.Options{
		Admin:    cp.AdminConfig(),
		User:     cp.UserConfig(),
		Duration: loadDuration(t),
	})
	if err != nil {
		t.Fatalf("%v (counts so far: %+v)", err, res)
	}
	t.Logf("load: %d requests in %s: creates %d gets %d updates %d patches %d lists %d (big %d) deletes %d deletecollections %d watches %d (events %d) 409s %d 404s %d traced %d",
		res.Requests, res.Elapsed.Round(time.Millisecond), res.Creates, res.Gets, res.Updates, res.Patches,
		res.Lists, res.BigLists, res.Deletes, res.DeleteCollections, res.Watches, res.WatchEvents,
		res.Conflicts, res.NotFound, len(res.Traced))

	// Restart both without tracing: a graceful stop flushes what the batch
	// span processors still hold. Then wait for the last exports.
	if err := cp.RestartAPIServer(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := cp.RestartEtcd(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sink.waitQuiet(3*time.Second, 30*time.Second)
	spans := sink.allSpans()
	if path := os.Getenv("E2E_DUMP_SPANS"); path != "" {
		if err := sink.writeJSONLines(path); err != nil {
			t.Errorf("E2E_DUMP_SPANS: %v", err)
		}
		t.Logf("spans written to %s", path)
	}

	t.Run("restarted without tracing exports nothing", func(t *testing.T) {
		before := sink.spanCount()
		cs, err := kubernetes.NewForConfig(cp.AdminConfig())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
				t.Fatalf("list %d after restart: %v", i, err)
			}
		}
		sink.waitQuiet(7*time.Second, 20*time.Second)
		if after := sink.spanCount(); after != before {
			t.Errorf("%d spans arrived after the restart without tracing flags", after-before)
		}
		if cmd := strings.Join(cp.APIServerCommand(), " "); strings.Contains(cmd, "tracing") {
			t.Errorf("kube-apiserver still has tracing flags: %s", cmd)
		}
	})

	perService := map[string]int{}
	for _, s := range spans {
		perService[s.Service]++
	}
	t.Logf("spans received: %d in %d exports; per service: %v", len(spans), sink.exports, perService)
	if perService["apiserver"] == 0 || perService["etcd"] == 0 {
		t.Fatalf("spans per service = %v; want both apiserver and etcd", perService)
	}

	byID := map[string]span{}
	for _, s := range spans {
		byID[s.TraceID+"/"+s.SpanID] = s
	}

	t.Run("apiserver CLIENT spans join etcd SERVER spans", func(t *testing.T) {
		joined := map[string]int{}
		var missing []string
		for _, s := range spans {
			if s.Service != "etcd" || s.Kind != ptrace.SpanKindServer || s.ParentID == "" {
				continue
			}
			p, ok := byID[s.TraceID+"/"+s.ParentID]
			switch {
			case ok && p.Service == "apiserver" && p.Kind == ptrace.SpanKindClient:
				joined[s.Name]++
			case strings.HasSuffix(s.Name, "Watch/Watch"):
				// Watch streams stay open until kube-apiserver stops; their
				// CLIENT spans may never be exported.
			default:
				missing = append(missing, s.Name+" "+s.TraceID)
			}
		}
		t.Logf("edges apiserver -> etcd by etcd span name: %v", joined)
		if joined["etcdserverpb.KV/Txn"] == 0 || joined["etcdserverpb.KV/Range"] == 0 {
			t.Errorf("joined = %v; want KV/Txn and KV/Range edges", joined)
		}
		if len(missing) > 0 {
			t.Errorf("%d etcd SERVER spans have a parent that is not an apiserver CLIENT span, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
	})

	t.Run("client traceparent continued for admin, linked for user", func(t *testing.T) {
		var adminContinued, userLinked, unsampled int
		for _, tr := range res.Traced {
			for _, s := range spans {
				if s.Service != "apiserver" || s.Kind != ptrace.SpanKindServer {
					continue
				}
				switch {
				case !tr.Sampled && s.TraceID == tr.TraceID:
					unsampled++
				case tr.Sampled && tr.Admin && s.TraceID == tr.TraceID && s.ParentID == tr.SpanID && s.HTTPPath() == tr.Path:
					adminContinued++
				case tr.Sampled && !tr.Admin && slices.Contains(s.Links, tr.TraceID+"/"+tr.SpanID) && s.HTTPPath() == tr.Path:
					if s.TraceID == tr.TraceID {
						t.Errorf("user request %s %s continued the caller's trace %s", tr.Verb, tr.Path, tr.TraceID)
					}
					userLinked++
				}
			}
		}
		wantAdmin, wantUser := 0, 0
		for _, tr := range res.Traced {
			if tr.Sampled && tr.Admin {
				wantAdmin++
			} else if tr.Sampled {
				wantUser++
			}
		}
		t.Logf("traceparent: %d/%d admin requests continued, %d/%d user requests linked, %d unsampled SERVER spans", adminContinued, wantAdmin, userLinked, wantUser, unsampled)
		if adminContinued != wantAdmin || userLinked != wantUser || unsampled != 0 {
			t.Errorf("continued %d (want %d), linked %d (want %d), unsampled SERVER spans %d (want 0)", adminContinued, wantAdmin, userLinked, wantUser, unsampled)
		}
	})

	t.Run("big LIST, writes through etcd Txn, 409 and 404", func(t *testing.T) {
		byTrace := map[string][]span{}
		for _, s := range spans {
			byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		}
		bigPath := "/api/v1/namespaces/" + load.DefaultPrefix + "-bulk/configmaps"
		var bigLists, bigSerialized, patchesViaTxn int
		var slowestBig time.Duration
		status := map[string]int{}
		for _, s := range spans {
			if s.Service != "apiserver" || s.Kind != ptrace.SpanKindServer {
				continue
			}
			status[s.HTTPStatus()]++
			method := s.HTTPMethod()
			if method == "GET" && s.HTTPPath() == bigPath {
				bigLists++
				slowestBig = max(slowestBig, s.Duration())
				if slices.ContainsFunc(byTrace[s.TraceID], func(x span) bool { return x.Name == "SerializeObject" }) {
					bigSerialized++
				}
			}
			if method == "PATCH" && slices.ContainsFunc(byTrace[s.TraceID], func(x span) bool {
				return x.Service == "etcd" && x.Name == "etcdserverpb.KV/Txn"
			}) {
				patchesViaTxn++
			}
		}
		t.Logf("big LISTs: %d (%d with SerializeObject), slowest %s; PATCHes reaching etcd Txn: %d; SERVER spans by status: %v",
			bigLists, bigSerialized, slowestBig.Round(time.Millisecond), patchesViaTxn, sortedCounts(status))
		if bigLists < res.BigLists || bigSerialized == 0 {
			t.Errorf("big LIST SERVER spans = %d (with SerializeObject %d); want >= %d", bigLists, bigSerialized, res.BigLists)
		}
		if patchesViaTxn == 0 {
			t.Error("no PATCH trace reaches an etcd KV/Txn SERVER span")
		}
		if status["409"] < res.Conflicts || status["404"] < res.NotFound {
			t.Errorf("409s = %d (want >= %d), 404s = %d (want >= %d)", status["409"], res.Conflicts, status["404"], res.NotFound)
		}
	})
}

func sortedCounts(m map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(m), cmp.Compare)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s:%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
