package enable

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

var target = Target{Endpoint: "127.0.0.1:34317", HTTPEndpoint: "127.0.0.1:34318", SamplingRatePerMillion: 1000000, ServiceInstanceID: "cp-1"}

func TestFlagValue(t *testing.T) {
	args := []string{"--config", "/var/lib/kubelet/config.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf", "-v=2",
		"-root-dir", "/scratch/root", "--hostname-override", "n1", "--config=/last.yaml", "--", "--config", "/after"}
	for name, want := range map[string]string{
		"config":            "/last.yaml",
		"kubeconfig":        "/etc/kubernetes/kubelet.conf",
		"v":                 "2",
		"root-dir":          "/scratch/root",
		"hostname-override": "n1",
	} {
		if got, ok := FlagValue(args, name); !ok || got != want {
			t.Errorf("FlagValue(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := FlagValue(args, "missing"); ok {
		t.Error("missing flag found")
	}
	if v, ok := FlagValue([]string{"--config"}, "config"); ok || v != "" {
		t.Errorf("flag without value: %q %v", v, ok)
	}
	for _, tc := range []struct {
		args    []string
		val, ok bool
		err     bool
	}{
		{[]string{"--enable-distributed-tracing"}, true, true, false},
		{[]string{"-enable-distributed-tracing=false"}, false, true, false},
		{[]string{"--enable-distributed-tracing=true", "--enable-distributed-tracing=0"}, false, true, false},
		{[]string{"--enable-distributed-tracing=maybe"}, false, true, true},
		{[]string{"--other"}, false, false, false},
	} {
		v, ok, err := BoolFlag(tc.args, "enable-distributed-tracing")
		if v != tc.val || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("BoolFlag(%q) = %v, %v, %v", tc.args, v, ok, err)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	got := ParseCmdline([]byte("/usr/bin/kubelet\x00--config\x00/var/lib/kubelet/config.yaml\x00--v=2\x00"))
	want := []string{"/usr/bin/kubelet", "--config", "/var/lib/kubelet/config.yaml", "--v=2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	if got := ParseEnviron(nil); got != nil {
		t.Errorf("empty environ: %q", got)
	}
	if got := ParseEnviron([]byte("A=1\x00B=\x00")); !slices.Equal(got, []string{"A=1", "B="}) {
		t.Errorf("environ: %q", got)
	}
}

func TestSetFlags(t *testing.T) {
	args := []string{"--a=1", "--b", "2", "--c=3", "--b=4", "--old", "x", "--", "--b=after"}
	got := setFlags(args, []flagSpec{{name: "b", value: "9"}, {name: "d", value: "new"}}, map[string]bool{"old": false})
	want := []string{"--a=1", "--b=9", "--c=3", "--d=new", "--", "--b=after"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := mergeFeatureGate("A=true, APIServerTracing=false,B=false", "APIServerTracing", true); got != "A=true,APIServerTracing=true,B=false" {
		t.Errorf("merged gates %q", got)
	}
	if got := mergeFeatureGate("", "APIServerTracing", true); got != "APIServerTracing=true" {
		t.Errorf("merged gates %q", got)
	}
}

// kubeadm's etcd command line (v1.31 and v1.37 shapes).
var (
	etcd35Args = []string{"etcd", "--advertise-client-urls=https://192.168.122.10:2379", "--data-dir=/var/lib/etcd",
		"--experimental-initial-corrupt-check=true", "--experimental-watch-progress-notify-interval=5s", "--name=cp-1"}
	etcd36Args = []string{"etcd", "--advertise-client-urls=https://192.168.122.10:2379", "--data-dir=/var/lib/etcd",
		"--feature-gates=InitialCorruptCheck=true", "--name=cp-1", "--watch-progress-notify-interval=5s"}
)

func TestEtcdArgsPerVersion(t *testing.T) {
	for _, tc := range []struct {
		name      string
		version   string
		args      []string
		env       []string
		wantFlags []string
		removed   []string
		notes     int
	}{
		{
			name: "3.5 with sampling flag", version: "3.5.21", args: etcd35Args,
			wantFlags: []string{"--experimental-enable-distributed-tracing=true", "--experimental-distributed-tracing-address=127.0.0.1:34317",
				"--experimental-distributed-tracing-service-name=etcd", "--experimental-distributed-tracing-instance-id=cp-1",
				"--experimental-distributed-tracing-sampling-rate=1000000"},
		},
		{
			name: "3.5 before the sampling flag", version: "3.5.9", args: etcd35Args, notes: 1,
			wantFlags: []string{"--experimental-enable-distributed-tracing=true", "--experimental-distributed-tracing-address=127.0.0.1:34317",
				"--experimental-distributed-tracing-service-name=etcd", "--experimental-distributed-tracing-instance-id=cp-1"},
		},
		{
			name: "3.5.4 samples everything", version: "3.5.4", args: etcd35Args, notes: 1,
			wantFlags: []string{"--experimental-enable-distributed-tracing=true", "--experimental-distributed-tracing-address=127.0.0.1:34317",
				"--experimental-distributed-tracing-service-name=etcd", "--experimental-distributed-tracing-instance-id=cp-1"},
		},
		{
			name: "3.6 new names", version: "3.6.16", args: etcd36Args,
			wantFlags: []string{"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
				"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1", "--distributed-tracing-sampling-rate=1000000"},
		},
		{
			name: "3.6 that already uses the experimental spelling keeps it", version: "3.6.4",
			args: append(slices.Clone(etcd36Args), "--experimental-distributed-tracing-address=10.0.0.1:4317"), notes: 1,
			wantFlags: []string{"--experimental-enable-distributed-tracing=true", "--experimental-distributed-tracing-address=127.0.0.1:34317",
				"--experimental-distributed-tracing-service-name=etcd", "--experimental-distributed-tracing-instance-id=cp-1",
				"--experimental-distributed-tracing-sampling-rate=1000000"},
		},
		{
			name: "3.7 drops experimental leftovers", version: "3.7.0",
			args: append(slices.Clone(etcd36Args), "--experimental-distributed-tracing-sampling-rate", "5"),
			wantFlags: []string{"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
				"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1", "--distributed-tracing-sampling-rate=1000000"},
			removed: []string{"--experimental-distributed-tracing-sampling-rate 5"},
		},
		{
			name: "3.6 replaces a disabled switch in place", version: "3.6.16",
			args: []string{"etcd", "--enable-distributed-tracing=false", "--name=x"},
			wantFlags: []string{"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:34317",
				"--distributed-tracing-service-name=etcd", "--distributed-tracing-instance-id=cp-1", "--distributed-tracing-sampling-rate=1000000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := EnableArgs(ArgsInput{Component: Etcd, Version: MustParseVersion(tc.version), Args: tc.args, Env: tc.env}, target)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyEnabled {
				t.Fatal("AlreadyEnabled")
			}
			if !slices.Equal(res.Flags, tc.wantFlags) {
				t.Errorf("flags\n got %q\nwant %q", res.Flags, tc.wantFlags)
			}
			if !slices.Equal(res.Removed, tc.removed) {
				t.Errorf("removed %q, want %q", res.Removed, tc.removed)
			}
			if len(res.Notes) != tc.notes {
				t.Errorf("notes %q", res.Notes)
			}
			if res.Args[0] != "etcd" {
				t.Errorf("program name lost: %q", res.Args)
			}
			for _, f := range tc.wantFlags {
				if n := countArg(res.Args, f); n != 1 {
					t.Errorf("%s appears %d times in %q", f, n, res.Args)
				}
			}
			checkOneSpelling(t, res.Args)
			// The original flags are all still there.
			for _, a := range tc.args {
				if !slices.Contains(res.Args, a) && !strings.Contains(a, "distributed-tracing") && a != "5" {
					t.Errorf("lost %s", a)
				}
			}
		})
	}
}

func countArg(args []string, a string) int {
	n := 0
	for _, x := range args {
		if x == a {
			n++
		}
	}
	return n
}

// checkOneSpelling fails if a tracing setting is present in both spellings (etcd 3.6 refuses it).
func checkOneSpelling(t *testing.T, args []string) {
	t.Helper()
	var exp, plain bool
	for _, a := range args {
		n, _, _, ok := flagName(a)
		if !ok || !slices.Contains(etcdTracingFlags, strings.TrimPrefix(n, experimental)) {
			continue
		}
		if strings.HasPrefix(n, experimental) {
			exp = true
		} else {
			plain = true
		}
	}
	if exp && plain {
		t.Errorf("both spellings in %q", args)
	}
}

func TestEtcdAlreadyEnabled(t *testing.T) {
	for _, tc := range []struct {
		version string
		args    []string
		env     []string
	}{
		{"3.5.21", []string{"etcd", "--experimental-enable-distributed-tracing"}, nil},
		{"3.6.16", []string{"etcd", "--experimental-enable-distributed-tracing=true"}, nil},
		{"3.6.16", []string{"etcd", "-enable-distributed-tracing"}, nil},
		{"3.7.0", []string{"etcd"}, []string{"ETCD_ENABLE_DISTRIBUTED_TRACING=true"}},
		{"3.5.21", []string{"etcd"}, []string{"ETCD_EXPERIMENTAL_ENABLE_DISTRIBUTED_TRACING=1"}},
	} {
		res, err := EnableArgs(ArgsInput{Component: Etcd, Version: MustParseVersion(tc.version), Args: tc.args, Env: tc.env}, target)
		if err != nil {
			t.Fatal(err)
		}
		if !res.AlreadyEnabled || res.Reason == "" || !slices.Equal(res.Args, tc.args) || len(res.Flags) != 0 {
			t.Errorf("%s %q %q: %+v", tc.version, tc.args, tc.env, res)
		}
	}
	// The 3.5 spelling does not switch 3.7 on (3.7 ignores it), so 3.7 is not "already on".
	res, err := EnableArgs(ArgsInput{Component: Etcd, Version: MustParseVersion("3.7.1"), Args: []string{"etcd", "--experimental-enable-distributed-tracing"}}, target)
	if err != nil || res.AlreadyEnabled || slices.Contains(res.Args, "--experimental-enable-distributed-tracing") {
		t.Errorf("3.7 with experimental flag: %+v %v", res, err)
	}
}

func TestEtcdRefusals(t *testing.T) {
	for name, in := range map[string]ArgsInput{
		"3.4":              {Component: Etcd, Version: MustParseVersion("3.4.27"), Args: []string{"etcd"}},
		"k8s tag":          {Component: Etcd, Version: MustParseVersion("1.37.2"), Args: []string{"etcd"}},
		"config file":      {Component: Etcd, Version: MustParseVersion("3.6.16"), Args: []string{"etcd", "--config-file", "/etc/etcd.yaml"}},
		"config file env":  {Component: Etcd, Version: MustParseVersion("3.6.16"), Args: []string{"etcd"}, Env: []string{"ETCD_CONFIG_FILE=/etc/etcd.yaml"}},
		"other spelling":   {Component: Etcd, Version: MustParseVersion("3.6.16"), Args: []string{"etcd"}, Env: []string{"ETCD_DISTRIBUTED_TRACING_ADDRESS=x:1"}, TracingConfigPath: ""},
		"kubelet by flags": {Component: Kubelet, Version: MustParseVersion("1.37.2"), Args: []string{"kubelet"}},
	} {
		if name == "other spelling" {
			// New spelling in the environment with experimental flags on the command line.
			in.Args = []string{"etcd", "--experimental-distributed-tracing-service-name=etcd"}
		}
		_, err := EnableArgs(in, target)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v does not wrap ErrUnsupported", name, err)
		}
	}
}

func TestAPIServerArgs(t *testing.T) {
	base := []string{"kube-apiserver", "--advertise-address=192.168.122.10", "--feature-gates=SomeGate=true", "--secure-port=6443"}
	for _, tc := range []struct {
		version    string
		wantFlags  []string
		apiVersion string
	}{
		{"1.37.2", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml"}, "apiserver.config.k8s.io/v1"},
		{"1.34.0", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml"}, "apiserver.config.k8s.io/v1"},
		{"1.33.5", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml"}, "apiserver.config.k8s.io/v1beta1"},
		{"1.31.0", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml"}, "apiserver.config.k8s.io/v1beta1"},
		{"1.27.0", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml"}, "apiserver.config.k8s.io/v1beta1"},
		{"1.26.15", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml", "--feature-gates=SomeGate=true,APIServerTracing=true"}, "apiserver.config.k8s.io/v1alpha1"},
		{"1.22.0", []string{"--tracing-config-file=/etc/kubernetes/tc.yaml", "--feature-gates=SomeGate=true,APIServerTracing=true"}, "apiserver.config.k8s.io/v1alpha1"},
	} {
		v := MustParseVersion(tc.version)
		res, err := EnableArgs(ArgsInput{Component: APIServer, Version: v, Args: base, TracingConfigPath: "/etc/kubernetes/tc.yaml"}, target)
		if err != nil {
			t.Fatalf("%s: %v", tc.version, err)
		}
		if !slices.Equal(res.Flags, tc.wantFlags) {
			t.Errorf("%s: flags %q", tc.version, res.Flags)
		}
		for _, f := range tc.wantFlags {
			if countArg(res.Args, f) != 1 {
				t.Errorf("%s: %s not once in %q", tc.version, f, res.Args)
			}
		}
		if n := len(res.Args) - len(base); n != 1 {
			t.Errorf("%s: %d arguments added", tc.version, n)
		}
		cfg, err := APIServerTracingConfig(v, target)
		if err != nil {
			t.Fatal(err)
		}
		want := "apiVersion: " + tc.apiVersion + "\nkind: TracingConfiguration\nendpoint: 127.0.0.1:34317\nsamplingRatePerMillion: 1000000\n"
		if !strings.HasSuffix(string(cfg), want) {
			t.Errorf("%s: config\n%s", tc.version, cfg)
		}
	}
	// Already on: left alone.
	on := append(slices.Clone(base), "--tracing-config-file", "/etc/kubernetes/tracing.yaml")
	res, err := EnableArgs(ArgsInput{Component: APIServer, Version: MustParseVersion("1.37.2"), Args: on, TracingConfigPath: "/x"}, target)
	if err != nil || !res.AlreadyEnabled || !strings.Contains(res.Reason, "/etc/kubernetes/tracing.yaml") || !slices.Equal(res.Args, on) {
		t.Errorf("already on: %+v %v", res, err)
	}
	if _, err := EnableArgs(ArgsInput{Component: APIServer, Version: MustParseVersion("1.21.14"), Args: base, TracingConfigPath: "/x"}, target); !errors.Is(err, ErrUnsupported) {
		t.Errorf("1.21: %v", err)
	}
	// A plain command line without program name (as in a container's args).
	res, err = EnableArgs(ArgsInput{Component: APIServer, Version: MustParseVersion("1.37.2"), Args: base[1:], TracingConfigPath: "/x"}, target)
	if err != nil || res.Args[0] != base[1] || res.Args[len(res.Args)-1] != "--tracing-config-file=/x" {
		t.Errorf("args only: %q %v", res.Args, err)
	}
}

func TestAPIServerTracingConfigQuotesEndpoint(t *testing.T) {
	cfg, err := APIServerTracingConfig(MustParseVersion("1.37.2"), Target{Endpoint: "[::1]:4317"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `endpoint: "[::1]:4317"`) || !strings.Contains(string(cfg), "samplingRatePerMillion: 0\n") {
		t.Errorf("config:\n%s", cfg)
	}
}

func FuzzEnableArgs(f *testing.F) {
	f.Add("etcd\x00--name=a\x00--experimental-distributed-tracing-address\x00x:1", "3.6.16", "ETCD_X=1")
	f.Add("etcd\x00--enable-distributed-tracing=false\x00--\x00--enable-distributed-tracing", "3.7.0", "")
	f.Add("--tracing-config-file\x00", "1.37.2", "")
	f.Add(strings.Join(etcd35Args, "\x00"), "3.5.21", "")
	f.Fuzz(func(t *testing.T, argv, version, env string) {
		v, err := ParseVersion(version)
		if err != nil {
			return
		}
		args := strings.Split(argv, "\x00")
		envs := strings.Split(env, "\x00")
		for _, c := range []Component{Etcd, APIServer} {
			res, err := EnableArgs(ArgsInput{Component: c, Version: v, Args: args, Env: envs, TracingConfigPath: "/etc/kubernetes/t.yaml"}, target)
			if err != nil {
				continue
			}
			if res.AlreadyEnabled {
				if !slices.Equal(res.Args, args) {
					t.Fatalf("already enabled but args changed: %q -> %q", args, res.Args)
				}
				continue
			}
			end := slices.Index(res.Args, "--")
			if end < 0 {
				end = len(res.Args)
			}
			for _, fl := range res.Flags {
				if countArg(res.Args[:end], fl) != 1 {
					t.Fatalf("%s not exactly once in %q", fl, res.Args)
				}
			}
			if c == Etcd {
				checkOneSpelling(t, res.Args[:end])
			}
			// Running it again finds tracing on and changes nothing.
			again, err := EnableArgs(ArgsInput{Component: c, Version: v, Args: res.Args, Env: envs, TracingConfigPath: "/etc/kubernetes/t.yaml"}, target)
			if err != nil || !again.AlreadyEnabled {
				t.Fatalf("second enable on %q: %+v, %v", res.Args, again, err)
			}
		}
	})
}
