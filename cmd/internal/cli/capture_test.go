package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCaptureFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		check   func(*testing.T, *CaptureOptions)
		wantErr string
	}{
		{"root defaults", nil, func(t *testing.T, o *CaptureOptions) {
			if o.Duration != 5*time.Minute || o.SamplingRate != 1_000_000 || o.ImagePullPolicy != "IfNotPresent" || o.Yes || o.DryRun {
				t.Fatalf("%+v", o)
			}
		}, ""},
		{"narrowed", []string{"--duration", "90s", "--components", "apiserver,etcd", "--nodes", "role=cp", "--yes", "--image", "img:1", "--context", "prod"}, func(t *testing.T, o *CaptureOptions) {
			co, err := o.clusterOptions()
			if err != nil {
				t.Fatal(err)
			}
			if co.Duration != 90*time.Second || len(co.Components) != 2 || co.NodeSelector != "role=cp" || co.Image != "img:1" || !o.Yes {
				t.Fatalf("%+v", co)
			}
			if got := strings.Join(o.restoreCommand, " "); got != "trace-capture restore --context=prod" {
				t.Fatalf("recovery command %q", got)
			}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := TestStreams()
			f := NewFactory(s, "test", nil)
			var got *CaptureOptions
			cmd := NewCmdCapture(f, func(_ context.Context, o *CaptureOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

func TestCaptureRefusesBadFlagsBeforeTouchingTheCluster(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	for args, want := range map[string]string{
		"--duration 0":                            "`--duration` must be positive",
		"--sampling-rate-per-million 2000000":     "within 0..1000000",
		"--image-pull-policy Sometimes --image x": "`--image-pull-policy`",
		"--dry-run -o yaml":                       "text or json",
		"--duration 1m":                           "`--image` is required",
		"--components apiserver,foo --image x":    "bad `--components`",
	} {
		_, _, err := run(t, strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

func TestCaptureUnreachableCluster(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	// A cluster on a loopback port where nothing listens.
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, _, _, _ := TestStreams()
	f := NewFactory(s, "test", nil)
	root := NewCmdRoot(f)
	root.SetArgs([]string{"--dry-run", "--kubeconfig", kc})
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable cluster: %v", err)
	}
}
