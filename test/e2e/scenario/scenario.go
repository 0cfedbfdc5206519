package scenario

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/trace-capture/trace-capture/capture/enable"
	"github.com/trace-capture/trace-capture/test/e2e/load"
	"github.com/trace-capture/trace-capture/test/e2e/localcp"
)

// Options configures Run.
type Options struct {
	// TraceCapture is the trace-capture binary under test.
	TraceCapture string
	// EtcdBinary and APIServerBinary are the real components.
	EtcdBinary, APIServerBinary string
	// Dir receives the bundle, the report and the control plane's files.
	Dir string
	// LoadDuration is the length of the load phase (default 20s).
	LoadDuration time.Duration
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Step, when set, is told about each phase as it starts.
	Step func(format string, args ...any)
}

// Result says what Run did and found.
type Result struct {
	Bundle    string
	ReportDir string
	// EtcdVersion and APIServerVersion are what the binaries report.
	EtcdVersion, APIServerVersion string
	// EtcdFlags and APIServerFlags are what the enable code added.
	EtcdFlags, APIServerFlags []string
	// ChangedFiles are the node paths the enable code wrote.
	ChangedFiles []string
	// Identical is true when every file under the host root and both
	// command lines were byte-identical after the restore.
	Identical bool
	// Load is what the load phase did.
	Load load.Result
	// EnabledAt is when both components ran with tracing; RestoredAt when
	// both ran without it again. Spans that start after RestoredAt would
	// mean a component still exports.
	EnabledAt, RestoredAt time.Time
	// Timings of the phases.
	Timings []Timing
	// RecordOutput and AnalyzeOutput are the commands' stdout.
	RecordOutput, AnalyzeOutput string
}

// Timing is one phase's duration.
type Timing struct {
	Phase    string
	Duration time.Duration
}

const (
	nodeName     = "local-node"
	manifestDir  = "/etc/kubernetes/manifests"
	journalDir   = "/var/lib/trace-capture/journal"
	localDataDir = "/var/lib/local-control-plane"
)

// Run runs the scenario. It always stops what it started.
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	step := opts.Step
	if step == nil {
		step = func(string, ...any) {}
	}
	if opts.LoadDuration <= 0 {
		opts.LoadDuration = 20 * time.Second
	}
	res = &Result{Bundle: filepath.Join(opts.Dir, "bundle.tgz"), ReportDir: filepath.Join(opts.Dir, "report")}
	phase := func(name string, began time.Time) {
		res.Timings = append(res.Timings, Timing{name, time.Since(began).Round(time.Millisecond)})
	}
	if res.EtcdVersion, err = localcp.BinaryVersion(ctx, opts.EtcdBinary); err != nil {
		return nil, err
	}
	if res.APIServerVersion, err = localcp.BinaryVersion(ctx, opts.APIServerBinary); err != nil {
		return nil, err
	}
	hostRoot := filepath.Join(opts.Dir, "host")
	cpDir := filepath.Join(hostRoot, localDataDir)
	if err := os.MkdirAll(cpDir, 0o700); err != nil {
		return nil, fmt.Errorf("create host root: %w", err)
	}

	// 1. The recorder, on free loopback ports.
	began := time.Now()
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	step("starting trace-capture record on %s", grpcAddr)
	rec, err := startRecord(ctx, opts.TraceCapture, grpcAddr, res.Bundle, filepath.Join(opts.Dir, "record.log"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if rec != nil {
			rec.kill()
		}
	}()
	phase("start recorder", began)

	// 2. etcd and kube-apiserver without tracing, as a cluster runs them.
	began = time.Now()
	step("starting etcd %s and kube-apiserver %s without tracing", res.EtcdVersion, res.APIServerVersion)
	cp, err := localcp.Start(ctx, localcp.Options{EtcdBinary: opts.EtcdBinary, APIServerBinary: opts.APIServerBinary, Dir: cpDir, Logger: log})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, cp.Stop(sctx))
	}()
	baseEtcd, baseAPI := cp.EtcdCommand(), cp.APIServerCommand()
	kl := &kubelet{hostRoot: hostRoot, cp: cp, base: map[enable.Component][]string{enable.Etcd: baseEtcd, enable.APIServer: baseAPI}}
	if err := kl.writeManifests(res.EtcdVersion, res.APIServerVersion); err != nil {
		return nil, err
	}
	before, err := treeDigest(hostRoot, localDataDir)
	if err != nil {
		return nil, err
	}
	phase("start control plane", began)

	// 3. Enable with the cluster capture's own code: plan, journal, edit.
	began = time.Now()
	target := enable.Target{Endpoint: grpcAddr, SamplingRatePerMillion: 1_000_000, ServiceInstanceID: nodeName}
	runID := fmt.Sprintf("scenario-%d", time.Now().UnixNano())
	restored := false
	restore := func(ctx context.Context) error {
		if restored {
			return nil
		}
		restored = true
		step("restoring the manifests from the journal and restarting without tracing")
		_, rerr := enable.Restore(ctx, hostRoot, enable.RestoreOptions{JournalDir: journalDir, RunID: runID, Logger: log})
		return errors.Join(rerr, kl.sync(ctx, enable.APIServer), kl.sync(ctx, enable.Etcd))
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, restore(rctx))
	}()
	for _, c := range []enable.Component{enable.Etcd, enable.APIServer} {
		step("switching %s tracing on (plan, journal, manifest edit, restart)", c)
		plan, err := enable.BuildPlan(ctx, hostRoot, enable.Spec{Component: c, Version: kl.version(c, res), Node: nodeName, Target: target, ManifestPath: manifestPath(c)})
		if err != nil {
			return res, err
		}
		if plan.AlreadyEnabled {
			return res, fmt.Errorf("%s: tracing already on before the scenario: %s", c, plan.Reason)
		}
		applied, err := enable.Apply(ctx, hostRoot, plan, enable.ApplyOptions{JournalDir: journalDir, RunID: runID, Logger: log})
		if err != nil {
			return res, err
		}
		res.ChangedFiles = append(res.ChangedFiles, applied.Files...)
		if c == enable.Etcd {
			res.EtcdFlags = plan.Flags
		} else {
			res.APIServerFlags = plan.Flags
		}
		if err := kl.sync(ctx, c); err != nil {
			return res, err
		}
	}
	res.EnabledAt = time.Now()
	phase("enable", began)

	// 4. Load.
	began = time.Now()
	step("driving load for %s (creates, gets, lists incl. a 12 MB one, watches, patches, deletes, traced requests)", opts.LoadDuration)
	res.Load, err = load.Run(ctx, load.Options{Admin: cp.AdminConfig(), User: cp.UserConfig(), Duration: opts.LoadDuration, Logger: log})
	if err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	phase("load", began)

	// 5. Restore and verify: files byte-identical, command lines as before.
	began = time.Now()
	if err := restore(ctx); err != nil {
		return res, err
	}
	res.RestoredAt = time.Now()
	after, err := treeDigest(hostRoot, localDataDir)
	if err != nil {
		return res, err
	}
	res.Identical = before == after && slices.Equal(cp.EtcdCommand(), baseEtcd) && slices.Equal(cp.APIServerCommand(), baseAPI)
	if !res.Identical {
		return res, fmt.Errorf("restore left a difference: files %s -> %s, etcd %q, apiserver %q", before, after, cp.EtcdCommand(), cp.APIServerCommand())
	}
	phase("restore", began)

	// 6. Traffic after the restore must produce no spans: give the
	// components' batch exporters (5 s) time to send anything they would.
	began = time.Now()
	step("checking that nothing is exported after the restore")
	if _, err := load.Run(ctx, load.Options{Admin: cp.AdminConfig(), Duration: time.Second, Prefix: "after-restore", Namespaces: 1, ConfigMapsPerNamespace: 2, BigConfigMaps: 1, BigLists: 1, TracedRequests: 1}); err != nil {
		return res, fmt.Errorf("load after restore: %w", err)
	}
	if err := sleep(ctx, 7*time.Second); err != nil {
		return res, err
	}
	phase("quiet check", began)

	// 7. Stop the recorder (as Ctrl-C would) and analyze.
	began = time.Now()
	step("stopping the recorder and writing %s", res.Bundle)
	out, err := rec.interrupt()
	rec = nil
	res.RecordOutput = out
	if err != nil {
		return res, err
	}
	phase("write bundle", began)
	began = time.Now()
	step("analyzing")
	cmd := exec.CommandContext(ctx, opts.TraceCapture, "analyze", res.Bundle, "-o", res.ReportDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("trace-capture analyze: %w: %s", err, stderr.String())
	}
	res.AnalyzeOutput = stdout.String()
	phase("analyze", began)
	return res, nil
}

func manifestPath(c enable.Component) string {
	return filepath.Join(manifestDir, string(c)+".yaml")
}

// kubelet stands in for the kubelet: it writes the static-pod manifests of
// the running processes and, after a manifest changed, restarts the process
// with the command the manifest now holds, paths mapped through its
// hostPath volumes.
type kubelet struct {
	hostRoot string
	cp       *localcp.ControlPlane
	base     map[enable.Component][]string
}

func (k *kubelet) version(c enable.Component, res *Result) enable.Version {
	if c == enable.Etcd {
		return enable.MustParseVersion(res.EtcdVersion)
	}
	return enable.MustParseVersion(res.APIServerVersion)
}

func (k *kubelet) writeManifests(etcdVersion, apiVersion string) error {
	dataPath := filepath.Join(k.hostRoot, localDataDir)
	for c, image := range map[enable.Component]string{
		enable.Etcd:      "registry.k8s.io/etcd:" + strings.TrimPrefix(etcdVersion, "v") + "-0",
		enable.APIServer: "registry.k8s.io/kube-apiserver:" + apiVersion,
	} {
		cmd := slices.Clone(k.base[c])
		cmd[0] = string(c)
		for i := range cmd { // node paths, as a manifest holds them
			cmd[i] = strings.ReplaceAll(cmd[i], dataPath, localDataDir)
		}
		dirType := corev1.HostPathDirectoryOrCreate
		pod := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: string(c), Namespace: "kube-system", Labels: map[string]string{"component": string(c), "tier": "control-plane"}},
			Spec: corev1.PodSpec{
				HostNetwork: true,
				Containers: []corev1.Container{{
					Name: string(c), Image: image, Command: cmd,
					VolumeMounts: []corev1.VolumeMount{{Name: "local-data", MountPath: localDataDir}},
				}},
				Volumes: []corev1.Volume{{Name: "local-data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: localDataDir, Type: &dirType}}}},
			},
		}
		b, err := yaml.Marshal(pod)
		if err != nil {
			return fmt.Errorf("encode %s manifest: %w", c, err)
		}
		p := filepath.Join(k.hostRoot, manifestPath(c))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("write %s manifest: %w", c, err)
		}
	}
	return nil
}

// sync restarts component c with the command of its manifest. The process
// is started from the base command plus the arguments the manifest adds:
// the edit may only add, so anything else is an error.
func (k *kubelet) sync(ctx context.Context, c enable.Component) error {
	raw, err := os.ReadFile(filepath.Join(k.hostRoot, manifestPath(c)))
	if err != nil {
		return fmt.Errorf("read %s manifest: %w", c, err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &pod); err != nil {
		return fmt.Errorf("decode %s manifest: %w", c, err)
	}
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("%s manifest: want one container", c)
	}
	ctr := pod.Spec.Containers[0]
	mounts := map[string]string{} // mountPath -> path on this machine
	for _, m := range ctr.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				mounts[m.MountPath] = filepath.Join(k.hostRoot, v.HostPath.Path)
			}
		}
	}
	args := append(slices.Clone(ctr.Command), ctr.Args...)
	baseArgs := map[string]bool{}
	for _, a := range k.base[c][1:] {
		baseArgs[mapPaths(a, mounts)] = true
	}
	var extra []string
	for _, a := range args[1:] {
		a = mapPaths(a, mounts)
		if !baseArgs[a] {
			extra = append(extra, a)
		}
	}
	if c == enable.Etcd {
		return k.cp.RestartEtcd(ctx, extra)
	}
	return k.cp.RestartAPIServer(ctx, extra)
}

// mapPaths rewrites a flag value that lies under a mount to the path on
// this machine, as the container would see it.
func mapPaths(arg string, mounts map[string]string) string {
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	keys := make([]string, 0, len(mounts))
	for m := range mounts {
		keys = append(keys, m)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, m := range keys {
		if value == m || strings.HasPrefix(value, m+"/") {
			return name + "=" + mounts[m] + strings.TrimPrefix(value, m)
		}
	}
	return arg
}

// treeDigest hashes every file below root (names, modes and content),
// except the data folder that the processes themselves write.
func treeDigest(root, skip string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if "/"+rel == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", rel, info.Mode())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash host root: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recorder is a running `trace-capture record`.
type recorder struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	done   chan error
}

func startRecord(ctx context.Context, bin, grpcAddr, bundle, logPath string) (*recorder, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "record", "--duration", "0", "--otlp-grpc", grpcAddr, "--otlp-http=", "-o", bundle, "-v")
	r := &recorder{cmd: cmd, stdout: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.stdout, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start trace-capture record: %w", err)
	}
	go func() { r.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", grpcAddr); err == nil {
			c.Close()
			return r, nil
		}
		select {
		case err := <-r.done:
			return nil, fmt.Errorf("trace-capture record exited: %v (see %s)", err, logPath)
		case <-ctx.Done():
			r.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("trace-capture record did not listen on %s (see %s)", grpcAddr, logPath)
		}
	}
}

// interrupt stops the recorder as Ctrl-C does and waits for the bundle.
func (r *recorder) interrupt() (string, error) {
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return "", fmt.Errorf("interrupt trace-capture record: %w", err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			return r.stdout.String(), fmt.Errorf("trace-capture record: %w", err)
		}
		return r.stdout.String(), nil
	case <-time.After(time.Minute):
		r.kill()
		return r.stdout.String(), errors.New("trace-capture record did not finish within a minute of SIGINT")
	}
}

func (r *recorder) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}
