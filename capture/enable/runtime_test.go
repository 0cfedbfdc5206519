package enable

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTOMLFixturesParse(t *testing.T) {
	for _, tc := range []struct {
		file  string
		path  []string
		value string
	}{
		{"containerd/config-1.7.toml", []string{"version"}, "2"},
		{"containerd/config-1.7.toml", []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "options", "SystemdCgroup"}, "true"},
		{"containerd/config-1.7.toml", []string{"timeouts", "io.containerd.timeout.shim.load"}, `"5s"`},
		{"containerd/config-1.6-tracing-defaults.toml", []string{"plugins", "io.containerd.internal.v1.tracing", "sampling_ratio"}, "1.0"},
		{"containerd/config-2.x.toml", []string{"plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"}, "'registry.k8s.io/pause:3.10'"},
		{"containerd/config-2.x.toml", []string{"stream_processors", "io.containerd.ocicrypt.decoder.v1.tar", "args"}, "['--decryption-keys-path', '/etc/containerd/ocicrypt/keys']"},
		{"local-cluster/containerd-config.toml", []string{"plugins", "io.containerd.cri.v1.runtime", "restrict_oom_score_adj"}, "true"},
		{"crio/crio.conf.d/10-crio.conf", []string{"crio", "runtime", "runtimes", "crun", "allowed_annotations"}, "[\n    \"io.containers.trace-syscall\",\n]"},
		{"crio/crio.conf.d/10-crio.conf", []string{"crio", "runtime", "runtimes", "runc", "monitor_path"}, `"/usr/libexec/crio/conmon"`},
	} {
		doc, err := parseTOML(fixture(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		it := doc.lookup(tc.path...)
		if it == nil || it.raw != tc.value {
			t.Errorf("%s %v = %+v, want %q", tc.file, tc.path, it, tc.value)
		}
		if !bytes.Equal(doc.bytes(), fixture(t, tc.file)) {
			t.Errorf("%s: not reproduced byte for byte", tc.file)
		}
	}
	// crio.conf has only commented-out tracing keys.
	doc, err := parseTOML(fixture(t, "crio/crio.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if it := doc.lookup("crio", "tracing", "enable_tracing"); it != nil {
		t.Errorf("commented key found: %+v", it)
	}
}

func TestTOMLSyntax(t *testing.T) {
	doc, err := parseTOML([]byte(`# comment
a = "x # not a comment" # comment
"quoted.key".b = 'lit'
c = """
multi [ line
"""
d = [
  1, # one
  [2, 3],
]
e = { x = 1, y = "}" }
[t . 'sub' ] # header comment
  k = 1
[[arr]]
  k = 2
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		raw  string
	}{
		{[]string{"a"}, `"x # not a comment"`},
		{[]string{"quoted.key", "b"}, `'lit'`},
		{[]string{"c"}, "\"\"\"\nmulti [ line\n\"\"\""},
		{[]string{"d"}, "[\n  1, \n  [2, 3],\n]"},
		{[]string{"e"}, `{ x = 1, y = "}" }`},
		{[]string{"t", "sub", "k"}, "1"},
		{[]string{"arr", "k"}, "2"},
	} {
		if it := doc.lookup(tc.path...); it == nil || it.raw != tc.raw {
			t.Errorf("%v = %+v, want %q", tc.path, it, tc.raw)
		}
	}
	for _, bad := range []string{"a = \"open\n", "[t\n", "= 1\n", "a = [1,\n", "a\n", "a = ]\n", "[t] x\n"} {
		if _, err := parseTOML([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCRIODropInAndDetection(t *testing.T) {
	v := MustParseVersion("1.36.3")
	body, err := CRIODropIn(v, target)
	if err != nil {
		t.Fatal(err)
	}
	want := "[crio.tracing]\nenable_tracing = true\ntracing_endpoint = \"127.0.0.1:34317\"\ntracing_sampling_rate_per_million = 1000000\n"
	if !strings.HasSuffix(string(body), want) {
		t.Errorf("drop-in:\n%s", body)
	}
	if _, err := CRIODropIn(MustParseVersion("1.22.5"), target); !errors.Is(err, ErrUnsupported) {
		t.Errorf("1.22: %v", err)
	}
	main := configFile{"/etc/crio/crio.conf", fixture(t, "crio/crio.conf")}
	pkg := configFile{"/etc/crio/crio.conf.d/10-crio.conf", fixture(t, "crio/crio.conf.d/10-crio.conf")}
	ours := configFile{"/etc/crio/crio.conf.d/99-trace-capture.conf", body}
	drop := "/etc/crio/crio.conf.d/" + CRIODropInName
	for name, tc := range map[string]struct {
		files     []configFile
		args, env []string
		on        bool
		later     []string
	}{
		"packaged":         {files: []configFile{main, pkg}},
		"with ours":        {files: []configFile{main, pkg, ours}, on: true},
		"flag off":         {files: []configFile{main, pkg, ours}, args: []string{"crio", "--enable-tracing=false"}},
		"env on":           {files: []configFile{main}, env: []string{"CONTAINER_ENABLE_TRACING=true"}, on: true},
		"later file off":   {files: []configFile{main, ours, {"/etc/crio/crio.conf.d/zz.conf", []byte("[crio.tracing]\nenable_tracing = false\n")}}, later: []string{"/etc/crio/crio.conf.d/zz.conf"}},
		"dotted in crio":   {files: []configFile{{"/etc/crio/crio.conf", []byte("[crio]\ntracing.enable_tracing = true\n")}}, on: true},
		"main turns it on": {files: []configFile{{"/etc/crio/crio.conf", []byte("[crio.tracing]\nenable_tracing = true\n")}, pkg}, on: true},
	} {
		on, reason, later, err := crioTracing(tc.files, tc.args, tc.env, drop)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if on != tc.on || (on && reason == "") || !slices.Equal(later, tc.later) {
			t.Errorf("%s: on=%v reason=%q later=%q", name, on, reason, later)
		}
	}
}

func TestContainerdEnvAndFiles(t *testing.T) {
	env, err := ContainerdEnv(MustParseVersion("2.4.2"), Target{Endpoint: "127.0.0.1:34317", SamplingRatePerMillion: 10000})
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvVar{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:34317"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
		{"OTEL_SERVICE_NAME", "containerd"},
		{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
		{"OTEL_TRACES_SAMPLER_ARG", "0.01"},
	}
	if !slices.Equal(env, want) {
		t.Errorf("env %v", env)
	}
	if _, err := ContainerdEnv(MustParseVersion("1.7.24"), target); !errors.Is(err, ErrUnsupported) {
		t.Errorf("1.7: %v", err)
	}
	dropIn := string(SystemdDropIn(env))
	if !strings.Contains(dropIn, "[Service]\nEnvironment=\"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:34317\"\n") {
		t.Errorf("drop-in:\n%s", dropIn)
	}
	if got := systemdQuote(`a"b\c%d`); got != `"a\"b\\c%%d"` {
		t.Errorf("systemd quoting %s", got)
	}

	// The local cluster's supervisor sources an (initially empty) env file.
	got, err := EditEnvFile(fixture(t, "local-cluster/containerd.env"), env)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:34317\nOTEL_EXPORTER_OTLP_PROTOCOL=grpc\nOTEL_SERVICE_NAME=containerd\nOTEL_TRACES_SAMPLER=parentbased_traceidratio\nOTEL_TRACES_SAMPLER_ARG=0.01\n" {
		t.Errorf("env file:\n%s", got)
	}
	got, err = EditEnvFile([]byte("# proxy\nHTTP_PROXY=http://proxy:3128\nexport OTEL_SERVICE_NAME='old'\nOTEL_SERVICE_NAME=older\nTAIL=1"), env[2:3])
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "# proxy\nHTTP_PROXY=http://proxy:3128\nOTEL_SERVICE_NAME=containerd\nTAIL=1\n" {
		t.Errorf("env file edit:\n%s", got)
	}
	if vars := envFileVars(got); !slices.Equal(vars, []string{"HTTP_PROXY=http://proxy:3128", "OTEL_SERVICE_NAME=containerd", "TAIL=1"}) {
		t.Errorf("vars %q", vars)
	}
	if _, err := EditEnvFile(nil, []EnvVar{{"BAD NAME", "x"}}); err == nil {
		t.Error("bad name accepted")
	}
	if q := shellQuote("a b'c"); q != `"a b'c"` {
		t.Errorf("quote %s", q)
	}

	for env, want := range map[string]bool{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:4318":                              true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://x:4318":                       true,
		"OTEL_EXPORTER_OTLP_ENDPOINT=":                                           false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:4318\x00OTEL_SDK_DISABLED=true":    false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:4318\x00OTEL_TRACES_EXPORTER=none": false,
		"PATH=/usr/bin": false,
	} {
		if on, _ := containerdTracingEnv(strings.Split(env, "\x00")); on != want {
			t.Errorf("%q: on=%v", env, on)
		}
	}
}

func TestEditContainerdConfig(t *testing.T) {
	v := MustParseVersion("1.7.24")
	wantOTLP := map[string]string{"endpoint": `"http://127.0.0.1:34318"`, "protocol": `"http/protobuf"`, "insecure": "true"}
	wantTracing := map[string]string{"sampling_ratio": "1.0", "service_name": `"containerd"`}
	check := func(t *testing.T, out []byte, otlp, tracing []string) {
		t.Helper()
		doc, err := parseTOML(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for k, v := range wantOTLP {
			if it := doc.lookup(append(slices.Clone(otlp), k)...); it == nil || it.raw != v {
				t.Errorf("%v.%s = %+v", otlp, k, it)
			}
		}
		for k, v := range wantTracing {
			if it := doc.lookup(append(slices.Clone(tracing), k)...); it == nil || it.raw != v {
				t.Errorf("%v.%s = %+v", tracing, k, it)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		added   int // lines added
		removed int
		v1      bool
	}{
		{"1.7 default (empty tracing tables)", fixture(t, "containerd/config-1.7.toml"), 5, 0, false},
		{"1.6 defaults (values in place)", fixture(t, "containerd/config-1.6-tracing-defaults.toml"), 3, 3, false},
		{"no file", nil, 10, 0, false},
		{"only comments", []byte("# nothing yet\n"), 10, 0, false},
		{"version 1", []byte("root = \"/var/lib/containerd\"\n[plugins.cri]\n  sandbox_image = \"k8s.gcr.io/pause:3.2\"\n"), 9, 0, true},
		{"no final newline", []byte("version = 2\n[plugins.\"io.containerd.internal.v1.tracing\"]\n  sampling_ratio = 0.5"), 7, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := EditContainerdConfig(tc.in, v, target)
			if err != nil {
				t.Fatal(err)
			}
			otlp, tracing := containerdOTLPTable, containerdTracingTable
			if tc.v1 {
				otlp, tracing = containerdOTLPTableV1, containerdTracingTableV1
			}
			check(t, res.Config, otlp, tracing)
			d := lineDiff("/etc/containerd/config.toml", tc.in, res.Config)
			added, removed := strings.Count(d, "\n+")-1, strings.Count(d, "\n-")
			if added != tc.added || removed != tc.removed {
				t.Errorf("+%d -%d lines:\n%s", added, removed, d)
			}
			if len(res.Settings) < 5 {
				t.Errorf("settings %q", res.Settings)
			}
			again, err := EditContainerdConfig(res.Config, v, target)
			if err != nil || !again.AlreadyEnabled || !bytes.Equal(again.Config, res.Config) {
				t.Errorf("second edit: %+v %v", again, err)
			}
		})
	}
	for name, tc := range map[string]struct {
		in []byte
		v  string
		tg Target
	}{
		"containerd 2":   {fixture(t, "containerd/config-2.x.toml"), "2.4.2", target},
		"version 3 file": {fixture(t, "containerd/config-2.x.toml"), "1.7.24", target},
		"no HTTP":        {nil, "1.7.24", Target{Endpoint: "127.0.0.1:4317"}},
		"1.5":            {nil, "1.5.18", target},
		"inline table":   {[]byte("version = 2\n[plugins]\n  \"io.containerd.tracing.processor.v1.otlp\" = { endpoint = \"\" }\n"), "1.7.24", target},
		"broken":         {[]byte("version = 2\n[plugins\n"), "1.7.24", target},
	} {
		if _, err := EditContainerdConfig(tc.in, MustParseVersion(tc.v), tc.tg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzTOMLSet(f *testing.F) {
	for _, name := range []string{"containerd/config-1.7.toml", "containerd/config-2.x.toml", "crio/crio.conf.d/10-crio.conf", "containerd/config-1.6-tracing-defaults.toml"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte("a = '''\n[x]\n'''\n[plugins.\"io.containerd.internal.v1.tracing\"]\nsampling_ratio = 1.0 # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseTOML(data)
		if err != nil {
			return
		}
		if !bytes.Equal(doc.bytes(), data) {
			t.Fatal("parse does not keep the bytes")
		}
		res, err := EditContainerdConfig(data, MustParseVersion("1.7.24"), target)
		if err != nil || res.AlreadyEnabled {
			return
		}
		if _, err := parseTOML(res.Config); err != nil {
			t.Fatalf("edited config does not parse: %v\n%s", err, res.Config)
		}
		again, err := EditContainerdConfig(res.Config, MustParseVersion("1.7.24"), target)
		if err != nil || !again.AlreadyEnabled {
			t.Fatalf("second edit: %+v %v\n%s", again, err, res.Config)
		}
	})
}

func FuzzEditEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nexport OTEL_SERVICE_NAME=x\n# c\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, _ := ContainerdEnv(MustParseVersion("2.4.2"), target)
		out, err := EditEnvFile(data, env)
		if err != nil {
			t.Fatal(err)
		}
		vars := envFileVars(out)
		for _, e := range env {
			if v, ok := envValue(vars, e.Name); !ok || v != e.Value {
				t.Fatalf("%s = %q in\n%s", e.Name, v, out)
			}
		}
		again, err := EditEnvFile(out, env)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}
