package cli

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// TestMain lets a test run the real command line in a child process (the
// test binary re-executed with TRACE_CAPTURE_TEST_MAIN=1), so that it can
// be killed like a real process.
func TestMain(m *testing.M) {
	if os.Getenv("TRACE_CAPTURE_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], System(), "test"))
	}
	os.Exit(m.Run())
}

func TestRecordFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    string
		want    RecordOptions
		wantErr string
	}{
		{"defaults", "", RecordOptions{Duration: 5 * time.Minute, GRPCAddr: "127.0.0.1:4317", HTTPAddr: "127.0.0.1:4318", MaxBytes: 2 << 30, MaxRequestBytes: 64 << 20}, ""},
		{"all", "--duration 0 --otlp-grpc 127.0.0.1:0 --otlp-http= --max-bytes 10 --max-request-bytes 5 -o x.tgz",
			RecordOptions{Duration: 0, GRPCAddr: "127.0.0.1:0", HTTPAddr: "", MaxBytes: 10, MaxRequestBytes: 5, Output: "x.tgz"}, ""},
		{"negative duration", "--duration -1s", RecordOptions{}, "`--duration` must not be negative"},
		{"no listener", "--otlp-grpc= --otlp-http=", RecordOptions{}, "at least one"},
		{"bad address", "--otlp-grpc nonsense", RecordOptions{}, "invalid gRPC address"},
		{"positional", "extra", RecordOptions{}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := TestStreams()
			f := NewFactory(s, "test", nil)
			var got *RecordOptions
			cmd := NewCmdRecord(f, func(_ context.Context, o *RecordOptions) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tc.args))
			cmd.SetOut(s.Out)
			cmd.SetErr(s.ErrOut)
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.IO, got.Factory, got.RedactOptions.IO = nil, nil, nil
			if *got != tc.want {
				t.Fatalf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	s, _, _, errOut := TestStreams()
	cases := []struct {
		err  error
		code int
		text string
	}{
		{nil, ExitOK, ""},
		{errors.New("boom"), ExitError, "error: boom"},
		{flagErrorf("bad `--x`"), ExitUsage, "bad `--x`"},
		{&RecoveryError{Err: errors.New("restore failed"), Command: "trace-capture restore --journal j"}, ExitRestoreIncomplete, "trace-capture restore --journal j"},
		{context.Canceled, ExitInterrupted, "interrupted"},
	}
	for _, tc := range cases {
		errOut.Reset()
		if got := exitCode(tc.err, s.ErrOut); got != tc.code || !strings.Contains(errOut.String(), tc.text) {
			t.Errorf("%v: code %d, output %q; want %d and %q", tc.err, got, errOut.String(), tc.code, tc.text)
		}
	}
}

func TestHelpNeedsNoKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	for _, args := range [][]string{{"--help"}, {"version"}, {"analyze", "--help"}, {"record", "--help"}} {
		s, _, out, errOut := TestStreams()
		f := NewFactory(s, "v9", nil)
		loaded := false
		kc := f.KubeConfig
		f.KubeConfig = func() clientcmd.ClientConfig { loaded = true; return kc() }
		root := NewCmdRoot(f)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errOut)
		}
		if loaded || out.Len() == 0 {
			t.Fatalf("%v: kubeconfig loaded=%v, output %q", args, loaded, out)
		}
	}
}
