package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func realCapture(name string) string {
	return filepath.Join("..", "..", "..", "testdata", name)
}

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	s, _, out, errOut := TestStreams()
	f := NewFactory(s, "test", nil)
	f.Now = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// TestImportAnalyzeExport runs the offline commands on the real
// kube-apiserver + etcd capture, as a user would.
func TestImportAnalyzeExport(t *testing.T) {
	dir := t.TempDir()
	bundlePath := filepath.Join(dir, "real.tgz")
	out, errOut, err := run(t, "import", realCapture("apiserver-etcd.otlp.jsonl.gz"), "-o", bundlePath)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "10949 spans from 2 sources") || !strings.Contains(errOut, "otlp-json") {
		t.Fatalf("import output: %q / %q", out, errOut)
	}

	out, errOut, err = run(t, "analyze", bundlePath)
	if err != nil {
		t.Fatalf("analyze: %v\n%s", err, errOut)
	}
	for _, want := range []string{"10949 spans", "apiserver → etcd", "1334", "report: " + filepath.Join(dir, "real-report", "report.html")} {
		if !strings.Contains(out, want) {
			t.Errorf("analyze summary lacks %q:\n%s", want, out)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "real-report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Summary struct{ Spans int64 } `json:"summary"`
		Edges   []struct {
			ClientService string `json:"client_service"`
			ServerService string `json:"server_service"`
			Calls         int64  `json:"calls"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Spans != 10949 || len(rep.Edges) == 0 || rep.Edges[0].ClientService != "apiserver" || rep.Edges[0].ServerService != "etcd" || rep.Edges[0].Calls != 1334 {
		t.Fatalf("report.json: %+v", rep)
	}
	html, err := os.ReadFile(filepath.Join(dir, "real-report", "report.html"))
	if err != nil || !strings.Contains(string(html), "<html") {
		t.Fatalf("report.html: %v", err)
	}

	// The collector-style file analyses directly, to the same figures.
	out2, _, err := run(t, "analyze", realCapture("apiserver-etcd.otlp.jsonl.gz"), "-o", filepath.Join(dir, "direct"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out2, "apiserver → etcd") {
		t.Fatalf("direct analyze:\n%s", out2)
	}

	jsonl := filepath.Join(dir, "out.jsonl")
	if _, errOut, err := run(t, "export", bundlePath, "--format", "otlp-json", "-o", jsonl); err != nil || !strings.Contains(errOut, "exported 10949 spans in 62 requests") {
		t.Fatalf("export: %v %s", err, errOut)
	}
	if _, _, err := run(t, "import", jsonl, "-o", filepath.Join(dir, "again.tgz")); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputsGiveClearErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.tgz")
	if err := os.WriteFile(junk, []byte("this is not a bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"analyze", junk},
		{"analyze", filepath.Join(dir, "missing.tgz")},
		{"export", junk, "--format", "otlp-json"},
		{"import", junk, "-o", filepath.Join(dir, "x.tgz")},
		{"export", junk, "--format", "yaml"},
		{"analyze", junk, "--top", "0"},
	}
	for _, args := range cases {
		_, _, err := run(t, args...)
		if err == nil {
			t.Errorf("%v: no error", args)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "panic") || msg != strings.TrimSpace(msg) || msg == "" {
			t.Errorf("%v: unclear error %q", args, msg)
		}
	}
}

func TestRecordRedact(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.tgz")
	stdout, errOut, err := run(t, "record", "--duration", "1s", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "-o", out, "--redact")
	if err != nil {
		t.Fatalf("record --redact: %v\n%s", err, errOut)
	}
	if !strings.Contains(stdout, "redacted bundle: "+out) {
		t.Fatalf("stdout: %s", stdout)
	}
	if _, err := os.Stat(out + ".mapping.json"); err != nil {
		t.Fatalf("mapping file: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*clear*")); len(m) != 0 {
		t.Fatalf("clear copy left behind: %v", m)
	}
	raw, err := exec.Command("tar", "-xzOf", out, "manifest.json").Output()
	if err != nil || !strings.Contains(string(raw), `"redaction"`) {
		t.Fatalf("manifest lacks the redaction report: %v\n%s", err, raw)
	}
}
