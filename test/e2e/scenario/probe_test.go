//go:build e2e

package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/trace-capture/trace-capture/analyze"
	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/capture/probe"
	"github.com/trace-capture/trace-capture/receiver"
	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
	"github.com/trace-capture/trace-capture/test/e2e/localcp"
)

// TestProbe is issue 6 part 3: real etcd and kube-apiserver configured by
// the project's enable code to trace at sampling rate 0 towards a loopback
// port; trace-capture's probe, as a system:masters user, gets full
// apiserver → etcd traces for its own requests and nothing else; as an
// ordinary user it is refused with the reason.
func TestProbe(t *testing.T) {
	etcdBin, apiBin := os.Getenv("E2E_ETCD"), os.Getenv("E2E_KUBE_APISERVER")
	if etcdBin == "" || apiBin == "" {
		t.Fatal("E2E_ETCD and E2E_KUBE_APISERVER must name the binaries: run `make e2e`")
	}
	dir := t.TempDir()

	// A free loopback port for the probe's receiver; the components are
	// configured to export there before it listens (at rate 0 they have
	// nothing to send until the probe asks).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := l.Addr().String()
	l.Close()
	target := enable.Target{Endpoint: endpoint, SamplingRatePerMillion: 0}

	etcdRes, err := enable.EnableArgs(enable.ArgsInput{Component: enable.Etcd, Version: enable.MustParseVersion(binVersion(etcdBin, "3.6.16"))}, target)
	if err != nil {
		t.Fatal(err)
	}
	apiVersion := enable.MustParseVersion(binVersion(apiBin, "1.37.2"))
	cfgPath := filepath.Join(dir, "tracing.yaml")
	apiRes, err := enable.EnableArgs(enable.ArgsInput{Component: enable.APIServer, Version: apiVersion, TracingConfigPath: cfgPath}, target)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := enable.APIServerTracingConfig(apiVersion, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd flags %v; apiserver flags %v; config:\n%s", etcdRes.Flags, apiRes.Flags, cfg)

	cp, err := localcp.Start(t.Context(), localcp.Options{EtcdBinary: etcdBin, APIServerBinary: apiBin, Dir: filepath.Join(dir, "cp"),
		EtcdArgs: etcdRes.Args, APIServerArgs: apiRes.Args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		if err := cp.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})

	// The unprivileged user: refused, with the reason, before anything is
	// created or sent.
	userOut := filepath.Join(dir, "user.tgz")
	_, err = probe.Run(t.Context(), probe.Options{Config: cp.UserConfig(), Duration: time.Second, Output: userOut,
		Receiver: receiver.Config{GRPCAddr: endpoint}})
	if !errors.Is(err, probe.ErrNotPossible) || !strings.Contains(err.Error(), localcp.User) || !strings.Contains(err.Error(), "system:masters") {
		t.Fatalf("probe as %s: want a refusal naming the user and system:masters, got %v", localcp.User, err)
	}
	t.Logf("refusal: %v", err)
	if _, serr := os.Stat(userOut); !os.IsNotExist(serr) {
		t.Fatalf("refused probe left %s: %v", userOut, serr)
	}

	// The admin (system:masters).
	out := filepath.Join(dir, "probe.tgz")
	res, err := probe.Run(t.Context(), probe.Options{Config: cp.AdminConfig(), Duration: 4 * time.Second, Rate: 5, Output: out,
		Receiver: receiver.Config{GRPCAddr: endpoint}, ToolVersion: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %d requests, %d traces seen, probe spans %v, other spans %v, namespace %s, bundle %d bytes",
		len(res.Requests), res.TracesSeen, res.ProbeSpans, res.OtherSpans, res.Namespace, res.Bytes)
	probeIDs := map[string]probe.SentRequest{}
	for _, r := range res.Requests {
		if r.Error != "" && r.Status == 0 {
			t.Fatalf("request %s %s got no answer: %s", r.Method, r.Path, r.Error)
		}
		probeIDs[r.TraceID] = r
	}
	if len(res.Requests) < 10 || res.TracesSeen != len(res.Requests) {
		t.Fatalf("%d requests, %d traces came back", len(res.Requests), res.TracesSeen)
	}

	// The bundle, read independently of the probe's own counting.
	spans, m := readBundle(t, out)
	if m.Mode != bundle.ModeLocal || !strings.Contains(strings.Join(m.Notes, "\n"), "probe: ") {
		t.Fatalf("manifest mode %q notes %q", m.Mode, m.Notes)
	}
	var listed struct {
		Namespace string              `json:"namespace"`
		Requests  []probe.SentRequest `json:"requests"`
	}
	if _, err := bundle.WalkFile(out, bundle.Limits{}, bundle.WalkFuncs{File: func(e *bundle.Entry) error {
		if e.Name == probe.RequestsFile {
			return json.NewDecoder(e).Decode(&listed)
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if len(listed.Requests) != len(res.Requests) || listed.Namespace != res.Namespace {
		t.Fatalf("%s lists %d requests in %q, want %d in %q", probe.RequestsFile, len(listed.Requests), listed.Namespace, len(res.Requests), res.Namespace)
	}

	byID := map[string]span{}
	for _, s := range spans {
		byID[s.traceID+s.spanID] = s
	}
	type traceFacts struct{ apiServer, etcdUnderClient int }
	facts := map[string]*traceFacts{}
	others := map[string]int{}
	for _, s := range spans {
		if _, ok := probeIDs[s.traceID]; !ok {
			others[s.service+" "+s.name]++
			continue
		}
		f := facts[s.traceID]
		if f == nil {
			f = &traceFacts{}
			facts[s.traceID] = f
		}
		if s.service == "apiserver" && s.kind == ptrace.SpanKindServer {
			f.apiServer++
		}
		if s.service == "etcd" && s.kind == ptrace.SpanKindServer {
			if p, ok := byID[s.traceID+s.parentID]; ok && p.service == "apiserver" && p.kind == ptrace.SpanKindClient {
				f.etcdUnderClient++
			}
		}
	}
	withEtcd := 0
	for id, r := range probeIDs {
		f := facts[id]
		if f == nil || f.apiServer != 1 {
			t.Fatalf("trace %s (%s %s, status %d): want one apiserver SERVER span, got %+v", id, r.Method, r.Path, r.Status, f)
		}
		if f.etcdUnderClient > 0 {
			withEtcd++
		}
		// Writes always reach etcd (a 404 patch/delete still reads it).
		if (r.Verb == probe.VerbCreate || r.Verb == probe.VerbPatch || r.Verb == probe.VerbDelete) && f.etcdUnderClient == 0 {
			t.Fatalf("write %s %s (status %d): no etcd SERVER span under an apiserver CLIENT span", r.Method, r.Path, r.Status)
		}
	}
	t.Logf("%d of %d probe traces reach etcd; spans outside probe traces: %v", withEtcd, len(probeIDs), others)
	// Nothing else is exported at rate 0, except kube-apiserver's
	// `authentication` filter span, which starts before the trace context
	// is read and so can be a lone root of its own.
	for k := range others {
		if k != "apiserver authentication" {
			t.Fatalf("spans outside the probe's traces were exported: %v", others)
		}
	}

	// analyze treats the bundle like any other.
	in, err := analyze.OpenInput(out)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := analyze.Run(t.Context(), analyze.Options{}, in.Source())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ar.Edges {
		if e.ClientService == "apiserver" && e.ServerService == "etcd" && e.Calls > 0 {
			found = true
			t.Logf("analyze: apiserver -> etcd %d calls, client p50 %.2f ms", e.Calls, e.ClientMs.P50)
		}
	}
	if !found {
		t.Fatalf("analyze found no apiserver -> etcd edge: %+v", ar.Edges)
	}

	t.Run("CLI", func(t *testing.T) { probeCLI(t, cp, endpoint, dir) })
}

// probeCLI runs `trace-capture probe` (E2E_TRACE_CAPTURE) as the admin with
// a mix of reads only (no scratch namespace) and as the ordinary user.
func probeCLI(t *testing.T, cp *localcp.ControlPlane, endpoint, dir string) {
	tc := os.Getenv("E2E_TRACE_CAPTURE")
	if tc == "" {
		t.Skip("E2E_TRACE_CAPTURE does not name a trace-capture binary")
	}
	kubeconfig := func(name, token string) string {
		c := clientcmdapi.NewConfig()
		c.Clusters["local"] = &clientcmdapi.Cluster{Server: cp.APIServerURL, CertificateAuthorityData: cp.CAData}
		c.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
		c.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name}
		c.CurrentContext = "local"
		p := filepath.Join(dir, name+".kubeconfig")
		if err := clientcmd.WriteToFile(*c, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mix := filepath.Join(dir, "mix.json")
	if err := os.WriteFile(mix, []byte(`[{"verb":"list","path":"/api/v1/namespaces"},{"verb":"get","path":"/api/v1/namespaces/default"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cli.tgz")
	cmd := exec.CommandContext(t.Context(), tc, "probe", "--kubeconfig", kubeconfig("admin", cp.AdminToken), "--otlp-grpc", endpoint,
		"--duration", "2s", "--rate", "4", "--requests", mix, "-o", out)
	stdout, err := cmd.Output()
	t.Logf("trace-capture probe:\n%s", stdout)
	if err != nil {
		t.Fatalf("trace-capture probe: %v", err)
	}
	m := regexp.MustCompile(`requests: (\d+) sent \(0 failed or unanswered\), (\d+) traces came back`).FindSubmatch(stdout)
	if m == nil || string(m[1]) != string(m[2]) || string(m[1]) == "0" {
		t.Fatalf("want every request's trace back, got:\n%s", stdout)
	}
	spans, _ := readBundle(t, out)
	if len(spans) == 0 {
		t.Fatal("the CLI's bundle has no spans")
	}

	cmd = exec.CommandContext(t.Context(), tc, "probe", "--kubeconfig", kubeconfig("alice", cp.UserToken), "--otlp-grpc", endpoint, "-o", filepath.Join(dir, "cli-user.tgz"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	t.Logf("trace-capture probe as %s: %v\n%s", localcp.User, err, stderr.String())
	if err == nil || !strings.Contains(stderr.String(), "system:masters") {
		t.Fatalf("want a refusal naming system:masters, got %v:\n%s", err, stderr.String())
	}
}

// binVersion reads the version from a cached binary's name (etcd-v3.6.16-…),
// or returns def.
func binVersion(path, def string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, "-v"); i >= 0 {
		rest := base[i+2:]
		if j := strings.Index(rest, "-"); j >= 0 {
			rest = rest[:j]
		}
		if _, err := enable.ParseVersion(rest); err == nil {
			return rest
		}
	}
	return def
}
