package report

import (
	"bytes"
	"context"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium; CI installs it (.ci/run).
const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test when Chromium is missing on a developer
// machine, and fails it in CI, where a missing browser is a broken setup.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install -y chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s not found: install Debian's chromium (apt-get install -y chromium) to run the browser test", chromiumPath)
	}
}

// artifactsDir is where screenshots and the rendered pages go:
// $TRACE_CAPTURE_ARTIFACTS when set, else a temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("TRACE_CAPTURE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// runChromium runs headless Chromium with a fresh profile and no network
// features and returns its stdout and stderr. The deadline only guards
// against a hung browser; it asserts nothing about speed.
func runChromium(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0",
	}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	// Own process group, so that a hung browser is killed with its helpers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, tail(errb.String(), 40))
	}
	return out.String(), errb.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// consoleProblems returns the page's console messages and uncaught errors
// from Chromium's log. The page itself never logs, so any line is a bug.
func consoleProblems(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Uncaught") {
			out = append(out, l)
		}
	}
	return out
}

var htmlTag = regexp.MustCompile(`(?s)<html\b[^>]*>`)

// rootAttrs returns the attributes of the dumped page's <html> element.
func rootAttrs(t *testing.T, dom string) map[string]string {
	t.Helper()
	tag := htmlTag.FindString(dom)
	if tag == "" {
		t.Fatalf("no <html> element in the dumped DOM:\n%.500s", dom)
	}
	attrs := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z-]+)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
		attrs[m[1]] = m[2]
	}
	return attrs
}

func fileURL(path, query string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: query}
	return u.String()
}

// TestReportInChromium opens the generated pages in real headless Chromium
// from file://: the script must run without console errors, its self test
// (graph, tables, sorting, paging, waterfall collapse and span details)
// must pass, and a screenshot is written for people to look at.
func TestReportInChromium(t *testing.T) {
	needChromium(t)
	dir := artifactsDir(t)
	for _, c := range []struct {
		name string
		want []string // in the rendered DOM
	}{
		{"small", []string{`class="node"`, `id="t-edges"`, `id="t-ops"`, `class="row cp`, `id="t-base-edges"`}},
		{"empty", []string{"No spans in this capture", "No services."}},
		{"real-kubelet-baseline", []string{`class="node"`, `id="t-edges"`, `id="t-ops"`, `id="t-k8s-cri"`}},
	} {
		name := c.name
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("testdata", name+".input.json")
			if _, err := os.Stat(in); err != nil {
				t.Skipf("no %s", in)
			}
			r := readInput(t, in)
			page := filepath.Join(dir, name+".report.html")
			f, err := os.Create(page)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteHTML(f, r, goldenOpts); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(page)
			if err != nil {
				t.Fatal(err)
			}

			dom, stderr := runChromium(t, "--dump-dom", fileURL(abs, "selftest"))
			if p := consoleProblems(stderr); len(p) > 0 {
				t.Errorf("console output from the page:\n%s", strings.Join(p, "\n"))
			}
			attrs := rootAttrs(t, dom)
			if attrs["data-ready"] != "1" {
				t.Errorf("page script did not finish: <html> attributes %v", attrs)
			}
			if attrs["data-selftest"] != "pass" {
				t.Errorf("self test: %q (attributes %v)", attrs["data-selftest"], attrs)
			}
			if attrs["data-errors"] != "" {
				t.Errorf("%s script errors", attrs["data-errors"])
			}
			if attrs["data-sorted-table"] == "" && name != "empty" {
				t.Error("self test sorted no table")
			}
			t.Logf("self test: %s checks, sorted %q", attrs["data-selftest-checks"], attrs["data-sorted-table"])
			for _, want := range c.want {
				if !strings.Contains(dom, want) {
					t.Errorf("rendered DOM lacks %s", want)
				}
			}

			shot := filepath.Join(dir, name+".png")
			_, stderr = runChromium(t, "--window-size=1400,2000", "--screenshot="+shot, fileURL(abs, ""))
			if p := consoleProblems(stderr); len(p) > 0 {
				t.Errorf("console output from the page:\n%s", strings.Join(p, "\n"))
			}
			checkScreenshot(t, shot, 1400, 2000)
			t.Logf("screenshot: %s", shot)
		})
	}
}

// checkScreenshot decodes the PNG and checks its size and that it is not
// blank: a page that failed to render is one flat colour.
func checkScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(colours) < 64; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 16 {
		t.Errorf("screenshot looks blank: %d distinct colours", len(colours))
	}
}
