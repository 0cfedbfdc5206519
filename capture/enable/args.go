package enable

import (
	"fmt"
	"strconv"
	"strings"
)

// ArgsInput is a component's command line, as in a static-pod manifest or /proc/PID/cmdline.
type ArgsInput struct {
	// Component is APIServer or Etcd.
	Component Component
	// Version is the component's version; it selects flag spellings and config versions.
	Version Version
	// Args is the argument list, with or without the program name first.
	Args []string
	// Env is the process environment ("KEY=VALUE"), if known: etcd also reads its flags from
	// ETCD_* variables.
	Env []string
	// TracingConfigPath is, for kube-apiserver, the path of the TracingConfiguration file as the
	// process sees it (APIServerTracingConfig writes its content).
	TracingConfigPath string
}

// ArgsResult is the command line with tracing on.
type ArgsResult struct {
	// Args is the new argument list (with the program name if the input had one). It equals the
	// input when AlreadyEnabled.
	Args []string
	// Flags lists the arguments that were added or replaced, in order, as they appear in Args.
	Flags []string
	// Removed lists the arguments that were removed (the other spelling of an etcd flag).
	Removed []string
	// AlreadyEnabled is true when the command line already switches tracing on; then nothing
	// changes and Reason says why.
	AlreadyEnabled bool
	Reason         string
	// Notes are facts for the plan (for example a sampling flag that this version lacks).
	Notes []string
}

// EnableArgs returns in.Args with tracing switched on towards t, for kube-apiserver or etcd.
func EnableArgs(in ArgsInput, t Target) (ArgsResult, error) {
	if err := t.Validate(); err != nil {
		return ArgsResult{}, fmt.Errorf("enable %s tracing: %w", in.Component, err)
	}
	switch in.Component {
	case Etcd:
		return etcdArgs(in, t)
	case APIServer:
		return apiServerArgs(in)
	}
	return ArgsResult{}, fmt.Errorf("enable %s tracing on its command line: %w: only kube-apiserver and etcd are configured by flags", in.Component, ErrUnsupported)
}

// etcd flag names, without the "experimental-" prefix that 3.5 needs.
const (
	etcdEnable      = "enable-distributed-tracing"
	etcdAddress     = "distributed-tracing-address"
	etcdServiceName = "distributed-tracing-service-name"
	etcdInstanceID  = "distributed-tracing-instance-id"
	etcdSampling    = "distributed-tracing-sampling-rate"
	experimental    = "experimental-"
)

var etcdTracingFlags = []string{etcdEnable, etcdAddress, etcdServiceName, etcdInstanceID, etcdSampling}

// etcdEnvName is the ETCD_* variable etcd reads for a flag.
func etcdEnvName(flag string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// EtcdSpelling returns the prefix of the tracing flags that etcd version v accepts: "experimental-"
// for 3.5, "" for 3.6 and later (3.6 accepts both, 3.7 only the new names). It fails for
// versions without distributed tracing (before 3.5).
func EtcdSpelling(v Version) (string, error) {
	switch {
	case v.Major != 3:
		return "", fmt.Errorf("etcd %s: %w: not an etcd 3.x version", v, ErrUnsupported)
	case !v.AtLeast(3, 5, 0):
		return "", fmt.Errorf("etcd %s: %w: distributed tracing needs etcd 3.5 or later", v, ErrUnsupported)
	case !v.AtLeast(3, 6, 0):
		return experimental, nil
	}
	return "", nil
}

func etcdArgs(in ArgsInput, t Target) (ArgsResult, error) {
	prefix, err := EtcdSpelling(in.Version)
	if err != nil {
		return ArgsResult{}, fmt.Errorf("enable etcd tracing: %w", err)
	}
	prog, flags := splitProgram(in.Args)
	res := ArgsResult{Args: append([]string(nil), in.Args...)}
	if p, ok := FlagValue(flags, "config-file"); ok {
		return ArgsResult{}, fmt.Errorf("enable etcd tracing: %w: etcd reads --config-file=%s and then ignores its other flags", ErrUnsupported, p)
	}
	if p, ok := envValue(in.Env, "ETCD_CONFIG_FILE"); ok && p != "" {
		return ArgsResult{}, fmt.Errorf("enable etcd tracing: %w: etcd reads ETCD_CONFIG_FILE=%s and then ignores its flags", ErrUnsupported, p)
	}

	// Already on? Look at both spellings, in flags and in the environment.
	usesExperimental := false
	for _, p := range []string{experimental, ""} {
		if !in.Version.AtLeast(3, 6, 0) && p == "" || in.Version.AtLeast(3, 7, 0) && p == experimental {
			continue // this version does not read that spelling
		}
		name := p + etcdEnable
		on, ok, err := BoolFlag(flags, name)
		if err != nil {
			return ArgsResult{}, fmt.Errorf("enable etcd tracing: %w", err)
		}
		if ok && on {
			res.AlreadyEnabled, res.Reason = true, "etcd already runs with --"+name
			return res, nil
		}
		if v, ok := envValue(in.Env, etcdEnvName(name)); ok {
			if b, err := strconv.ParseBool(v); err == nil && b {
				res.AlreadyEnabled, res.Reason = true, "etcd already runs with "+etcdEnvName(name)+"="+v
				return res, nil
			}
		}
		if p == experimental {
			for _, f := range etcdTracingFlags {
				_, inEnv := envValue(in.Env, etcdEnvName(p+f))
				if len(findFlag(flags, p+f, f == etcdEnable)) > 0 || inEnv {
					usesExperimental = true
				}
			}
		}
	}
	// 3.6 accepts both spellings but refuses to start when the same setting is given in both.
	// Keep the experimental spelling if the command line or environment already uses it.
	if prefix == "" && usesExperimental && !in.Version.AtLeast(3, 7, 0) {
		prefix = experimental
		res.Notes = append(res.Notes, "etcd 3.6 already uses the deprecated --experimental-distributed-tracing-* spelling; kept it (setting both spellings stops etcd)")
	}
	other := experimental
	if prefix == experimental {
		other = ""
	}
	// On 3.6 a setting given in the environment in the other spelling would clash with our flag
	// (3.7 ignores the experimental variables).
	for _, f := range etcdTracingFlags {
		if _, ok := envValue(in.Env, etcdEnvName(other+f)); ok && in.Version.AtLeast(3, 6, 0) && !in.Version.AtLeast(3, 7, 0) {
			return ArgsResult{}, fmt.Errorf("enable etcd tracing: %w: %s is set in the environment and etcd refuses both spellings of one setting", ErrUnsupported, etcdEnvName(other+f))
		}
	}

	set := []flagSpec{
		{name: prefix + etcdEnable, isBool: true, value: "true"},
		{name: prefix + etcdAddress, value: t.Endpoint},
		{name: prefix + etcdServiceName, value: "etcd"},
	}
	if t.ServiceInstanceID != "" {
		set = append(set, flagSpec{name: prefix + etcdInstanceID, value: t.ServiceInstanceID})
	}
	if in.Version.AtLeast(3, 5, 11) {
		set = append(set, flagSpec{name: prefix + etcdSampling, value: strconv.Itoa(int(t.SamplingRatePerMillion))})
	} else if in.Version.AtLeast(3, 5, 5) {
		res.Notes = append(res.Notes, fmt.Sprintf("etcd %s has no sampling-rate flag (added in 3.5.11): it records only the requests whose kube-apiserver span was sampled", in.Version))
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("etcd %s has no sampling-rate flag and samples every request", in.Version))
	}
	remove := map[string]bool{}
	for _, f := range etcdTracingFlags {
		remove[other+f] = f == etcdEnable
	}
	for _, f := range etcdTracingFlags {
		for _, o := range findFlag(flags, other+f, f == etcdEnable) {
			res.Removed = append(res.Removed, strings.Join(flags[o.index:o.index+o.n], " "))
		}
	}
	newFlags := setFlags(flags, set, remove)
	res.Args = append(append([]string(nil), prog...), newFlags...)
	for _, f := range set {
		res.Flags = append(res.Flags, f.arg())
	}
	return res, nil
}

// TracingConfigFlag is kube-apiserver's flag that names its TracingConfiguration file.
const TracingConfigFlag = "tracing-config-file"

// checkAPIServerVersion fails for kube-apiserver versions without tracing.
func checkAPIServerVersion(v Version) error {
	if v.Major != 1 || !v.AtLeast(1, 22, 0) {
		return fmt.Errorf("kube-apiserver %s: %w: tracing needs Kubernetes 1.22 or later", v, ErrUnsupported)
	}
	return nil
}

func apiServerArgs(in ArgsInput) (ArgsResult, error) {
	if err := checkAPIServerVersion(in.Version); err != nil {
		return ArgsResult{}, fmt.Errorf("enable kube-apiserver tracing: %w", err)
	}
	prog, flags := splitProgram(in.Args)
	res := ArgsResult{Args: append([]string(nil), in.Args...)}
	if p, ok := FlagValue(flags, TracingConfigFlag); ok && p != "" {
		res.AlreadyEnabled, res.Reason = true, "kube-apiserver already runs with --"+TracingConfigFlag+"="+p
		return res, nil
	}
	if in.TracingConfigPath == "" {
		return ArgsResult{}, fmt.Errorf("enable kube-apiserver tracing: no tracing configuration path")
	}
	set := []flagSpec{{name: TracingConfigFlag, value: in.TracingConfigPath}}
	if !in.Version.AtLeast(1, 27, 0) {
		// Alpha before 1.27: the gate must be on, or the apiserver refuses the config file.
		gates, _ := FlagValue(flags, "feature-gates")
		set = append(set, flagSpec{name: "feature-gates", value: mergeFeatureGate(gates, "APIServerTracing", true)})
		res.Notes = append(res.Notes, "kube-apiserver before 1.27 needs the APIServerTracing feature gate (alpha)")
	}
	res.Args = append(append([]string(nil), prog...), setFlags(flags, set, nil)...)
	for _, f := range set {
		res.Flags = append(res.Flags, f.arg())
	}
	return res, nil
}

// APIServerConfigVersion returns the TracingConfiguration apiVersion that kube-apiserver v reads:
// v1 from 1.34, v1beta1 from 1.27, v1alpha1 from 1.22.
func APIServerConfigVersion(v Version) (string, error) {
	if err := checkAPIServerVersion(v); err != nil {
		return "", err
	}
	switch {
	case v.AtLeast(1, 34, 0):
		return "apiserver.config.k8s.io/v1", nil
	case v.AtLeast(1, 27, 0):
		return "apiserver.config.k8s.io/v1beta1", nil
	}
	return "apiserver.config.k8s.io/v1alpha1", nil
}

// APIServerTracingConfig returns the TracingConfiguration file for kube-apiserver version v. The
// apiserver decodes it strictly, so it holds only the known fields.
func APIServerTracingConfig(v Version, t Target) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("kube-apiserver tracing configuration: %w", err)
	}
	apiVersion, err := APIServerConfigVersion(v)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver tracing configuration: %w", err)
	}
	return fmt.Appendf(nil, "# Written by trace-capture for a capture window; removed when it ends.\n"+
		"apiVersion: %s\nkind: TracingConfiguration\nendpoint: %s\nsamplingRatePerMillion: %d\n",
		apiVersion, yamlString(t.Endpoint), t.SamplingRatePerMillion), nil
}

// yamlString quotes s for YAML when it is not a plain safe scalar.
func yamlString(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/:", r)) {
			safe = false
			break
		}
	}
	if safe && !strings.HasPrefix(s, "-") && !strings.HasPrefix(s, ":") {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			switch strings.ToLower(s) {
			case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~":
			default:
				return s
			}
		}
	}
	return strconv.Quote(s)
}
