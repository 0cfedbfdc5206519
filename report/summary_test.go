package report

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSummary(t *testing.T) {
	r := readInput(t, filepath.Join("testdata", "small.input.json"))
	var b bytes.Buffer
	if err := WriteSummary(&b, r, SummaryOptions{Rows: 1}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"1240 spans in 161 traces from 4 services", "kubelet → containerd", "Slow paths", "b72fa9f4ff75d0888e0336a5a497149f", "[clock_skew_capped]"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "apiserver → etcd") {
		t.Errorf("Rows: 1 printed a second edge:\n%s", out)
	}
	if err := WriteSummary(&b, nil, SummaryOptions{}); err == nil {
		t.Error("nil result: no error")
	}
	if err := WriteSummary(&limitWriter{n: 10}, r, SummaryOptions{}); !errors.Is(err, errDiskFull) {
		t.Errorf("failing writer: err = %v", err)
	}
}

// Span text must not drive the terminal: escape sequences and carriage
// returns in service names and messages are neutralised.
func TestWriteSummaryHostile(t *testing.T) {
	r := hostileResult()
	r.Edges[0].ClientService = "\x1b]0;pwned\x07\x1b[2J\rapi\tserver"
	r.Warnings[0].Message = "line1\nline2\x1b[31m red \u009b31m"
	var b bytes.Buffer
	if err := WriteSummary(&b, r, SummaryOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b"} {
		if strings.Contains(out, bad) {
			t.Errorf("summary contains %q", bad)
		}
	}
	if !strings.Contains(out, "\uFFFD]0;pwned") {
		t.Errorf("escape not replaced visibly:\n%s", out)
	}
}
