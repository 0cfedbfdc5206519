package enable

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CRIODropInName is the name of the drop-in that switches CRI-O's tracing on. CRI-O applies its
// drop-ins in lexical order, later files winning.
const CRIODropInName = "99-trace-capture.conf"

// CheckCRIOVersion fails for CRI-O versions without tracing (before 1.23).
func CheckCRIOVersion(v Version) error {
	if v.Major != 1 || !v.AtLeast(1, 23, 0) {
		return fmt.Errorf("CRI-O %s: %w: tracing needs CRI-O 1.23 or later", v, ErrUnsupported)
	}
	return nil
}

// CRIODropIn returns the drop-in file (for crio.conf.d) that switches CRI-O's tracing on.
func CRIODropIn(v Version, t Target) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("CRI-O drop-in: %w", err)
	}
	if err := CheckCRIOVersion(v); err != nil {
		return nil, fmt.Errorf("CRI-O drop-in: %w", err)
	}
	return fmt.Appendf(nil, "# Written by trace-capture for a capture window; removed when it ends.\n"+
		"[crio.tracing]\nenable_tracing = true\ntracing_endpoint = %s\ntracing_sampling_rate_per_million = %d\n",
		tomlQuote(t.Endpoint), t.SamplingRatePerMillion), nil
}

// configFile is a configuration file's path and content.
type configFile struct {
	Path string
	Data []byte
}

// crioTracing returns whether CRI-O's tracing is on given its configuration files in the order
// CRI-O applies them (main file first, then drop-ins in lexical order), its command line and its
// environment (flags win over files, as in CRI-O's CLI). laterSetters lists the files that set
// tracing keys after (and so over) a drop-in named dropIn.
func crioTracing(files []configFile, args, env []string, dropIn string) (on bool, reason string, laterSetters []string, err error) {
	for _, f := range files {
		doc, err := parseTOML(f.Data)
		if err != nil {
			return false, "", nil, fmt.Errorf("read %s: %w", f.Path, err)
		}
		for _, key := range []string{"enable_tracing", "tracing_endpoint", "tracing_sampling_rate_per_million"} {
			it := doc.lookup("crio", "tracing", key)
			if it == nil {
				continue
			}
			if dropIn != "" && f.Path > dropIn && sameDir(f.Path, dropIn) {
				laterSetters = append(laterSetters, f.Path)
			}
			if key == "enable_tracing" {
				b, ok := tomlBoolValue(it.raw)
				if !ok {
					return false, "", nil, fmt.Errorf("read %s: enable_tracing is not a bool", f.Path)
				}
				on = b
				if b {
					reason = "enable_tracing = true in " + f.Path
				} else {
					reason = ""
				}
			}
		}
	}
	if v, ok := envValue(env, "CONTAINER_ENABLE_TRACING"); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			on, reason = b, "CONTAINER_ENABLE_TRACING="+v+" in CRI-O's environment"
		}
	}
	if b, ok, err := BoolFlag(args, "enable-tracing"); err != nil {
		return false, "", nil, err
	} else if ok {
		on, reason = b, "--enable-tracing on CRI-O's command line"
	}
	if !on {
		reason = ""
	}
	return on, reason, dedupe(laterSetters), nil
}

func sameDir(a, b string) bool {
	i, j := strings.LastIndexByte(a, '/'), strings.LastIndexByte(b, '/')
	return i >= 0 && j >= 0 && a[:i] == b[:j]
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// EnvVar is an environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CheckContainerdVersion fails for containerd versions without tracing (before 1.6).
func CheckContainerdVersion(v Version) error {
	if v.Major < 1 || v.Major == 1 && !v.AtLeast(1, 6, 0) {
		return fmt.Errorf("containerd %s: %w: tracing needs containerd 1.6 or later", v, ErrUnsupported)
	}
	return nil
}

// ContainerdEnv returns the environment that switches tracing on in containerd 2.x, which reads
// its tracing settings only from OTEL_* variables: OTLP over gRPC to t.Endpoint, service name
// containerd, and a parent-based ratio sampler (without a sampler the SDK default,
// parentbased_always_on, would trace every periodic CRI call).
func ContainerdEnv(v Version, t Target) ([]EnvVar, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("containerd environment: %w", err)
	}
	if err := CheckContainerdVersion(v); err != nil {
		return nil, fmt.Errorf("containerd environment: %w", err)
	}
	if v.Major < 2 {
		return nil, fmt.Errorf("containerd environment: %w: containerd %s is configured in config.toml (see EditContainerdConfig)", ErrUnsupported, v)
	}
	return []EnvVar{
		{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://" + t.Endpoint},
		{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Value: "grpc"},
		{Name: "OTEL_SERVICE_NAME", Value: "containerd"},
		{Name: "OTEL_TRACES_SAMPLER", Value: "parentbased_traceidratio"},
		{Name: "OTEL_TRACES_SAMPLER_ARG", Value: t.samplingRatio()},
	}, nil
}

// containerdTracingEnv tells whether an environment switches containerd 2.x tracing on.
func containerdTracingEnv(env []string) (bool, string) {
	if v, ok := envValue(env, "OTEL_SDK_DISABLED"); ok {
		if b, err := strconv.ParseBool(v); err != nil || b {
			return false, ""
		}
	}
	if v, ok := envValue(env, "OTEL_TRACES_EXPORTER"); ok && v != "" && v != "otlp" {
		return false, ""
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v, ok := envValue(env, k); ok && v != "" {
			return true, k + "=" + v + " in containerd's environment"
		}
	}
	return false, ""
}

// SystemdDropIn returns a systemd unit drop-in ([Service] Environment=...) for env.
func SystemdDropIn(env []EnvVar) []byte {
	var b strings.Builder
	b.WriteString("# Written by trace-capture for a capture window; removed when it ends.\n[Service]\n")
	for _, e := range env {
		b.WriteString("Environment=" + systemdQuote(e.Name+"="+e.Value) + "\n")
	}
	return []byte(b.String())
}

// systemdQuote quotes a word for a systemd Environment= line.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// EditEnvFile sets env in an environment file (KEY=VALUE lines, as systemd's EnvironmentFile= and
// a shell's `set -a; . file` read it): existing assignments of these names are replaced in place,
// the others are appended. Comments and other lines are kept.
func EditEnvFile(data []byte, env []EnvVar) ([]byte, error) {
	for _, e := range env {
		if !validEnvName(e.Name) {
			return nil, fmt.Errorf("edit environment file: invalid variable name %q", e.Name)
		}
		if strings.ContainsAny(e.Value, "\n\r\x00") {
			return nil, fmt.Errorf("edit environment file: value of %s contains a line break", e.Name)
		}
	}
	lines := strings.SplitAfter(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	done := map[string]bool{}
	for i, l := range lines {
		s := strings.TrimLeft(l, " \t")
		s = strings.TrimPrefix(s, "export ")
		name, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		for _, e := range env {
			if e.Name != name {
				continue
			}
			if done[name] {
				lines[i] = ""
			} else {
				lines[i] = e.Name + "=" + shellQuote(e.Value) + lineEnding(l)
				if lineEnding(l) == "" {
					lines[i] += "\n"
				}
				done[name] = true
			}
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
	}
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	for _, e := range env {
		if !done[e.Name] {
			b.WriteString(e.Name + "=" + shellQuote(e.Value) + "\n")
		}
	}
	return []byte(b.String()), nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// shellQuote leaves safe words bare and single-quotes the rest; both a shell and systemd's
// EnvironmentFile= parser read the result as the same value.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:,=@%+-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// Containerd 1.6/1.7 tracing plugins, in config version 2 (full plugin URIs) and 1 (short IDs).
var (
	containerdOTLPTable      = []string{"plugins", "io.containerd.tracing.processor.v1.otlp"}
	containerdTracingTable   = []string{"plugins", "io.containerd.internal.v1.tracing"}
	containerdOTLPTableV1    = []string{"plugins", "otlp"}
	containerdTracingTableV1 = []string{"plugins", "tracing"}
)

// ContainerdConfigResult is an edited containerd 1.6/1.7 config.toml.
type ContainerdConfigResult struct {
	// Config is the new file; it equals the input when AlreadyEnabled.
	Config []byte
	// AlreadyEnabled is true when the file already sets an OTLP endpoint; Reason says so.
	AlreadyEnabled bool
	Reason         string
	// Settings lists the keys set, as "table.key = value".
	Settings []string
	Notes    []string
}

// EditContainerdConfig switches tracing on in a containerd 1.6/1.7 config.toml: the OTLP processor
// plugin exports over OTLP/HTTP to t.HTTPEndpoint (the one form that every 1.6/1.7 patch release
// reads the same way) and the tracing plugin samples at t's rate. Other lines are kept as they
// are. An empty config (a missing file) gets "version = 2".
func EditContainerdConfig(config []byte, v Version, t Target) (ContainerdConfigResult, error) {
	res, err := editContainerdConfig(config, v, t)
	if err != nil {
		return ContainerdConfigResult{}, fmt.Errorf("edit containerd configuration: %w", err)
	}
	return res, nil
}

func editContainerdConfig(config []byte, v Version, t Target) (ContainerdConfigResult, error) {
	if err := t.Validate(); err != nil {
		return ContainerdConfigResult{}, err
	}
	if err := CheckContainerdVersion(v); err != nil {
		return ContainerdConfigResult{}, err
	}
	if v.Major >= 2 {
		return ContainerdConfigResult{}, fmt.Errorf("%w: containerd %s ignores the tracing settings in config.toml; use its environment (ContainerdEnv)", ErrUnsupported, v)
	}
	if t.HTTPEndpoint == "" {
		return ContainerdConfigResult{}, fmt.Errorf("containerd %s needs an OTLP/HTTP endpoint", v)
	}
	doc, err := parseTOML(config)
	if err != nil {
		return ContainerdConfigResult{}, err
	}
	version := int64(1)
	if it := doc.lookup("version"); it != nil {
		n, ok := tomlIntValue(it.raw)
		if !ok {
			return ContainerdConfigResult{}, fmt.Errorf("version = %s is not a number", it.raw)
		}
		version = n
	}
	empty := len(doc.items) == 0
	otlpTable, tracingTable := containerdOTLPTable, containerdTracingTable
	switch {
	case empty:
		version = 2
	case version == 1:
		otlpTable, tracingTable = containerdOTLPTableV1, containerdTracingTableV1
	case version == 2:
	default:
		return ContainerdConfigResult{}, fmt.Errorf("%w: config version %d is not a containerd 1.x config", ErrUnsupported, version)
	}
	res := ContainerdConfigResult{Config: config}
	if it := doc.lookup(append(append([]string(nil), otlpTable...), "endpoint")...); it != nil {
		if s, ok := tomlStringValue(it.raw); ok && s != "" {
			res.AlreadyEnabled, res.Reason = true, "config.toml already sets "+tomlPath(otlpTable)+".endpoint = "+it.raw
			return res, nil
		}
	}
	otlp := []tomlKV{
		{key: "endpoint", raw: tomlQuote("http://" + t.HTTPEndpoint)},
		{key: "protocol", raw: tomlQuote("http/protobuf")},
		{key: "insecure", raw: "true"},
	}
	ratio := t.samplingRatio()
	if !strings.Contains(ratio, ".") {
		ratio += ".0"
	}
	tracing := []tomlKV{
		{key: "sampling_ratio", raw: ratio},
		{key: "service_name", raw: tomlQuote("containerd")},
	}
	if t.SamplingRatePerMillion == 0 {
		res.Notes = append(res.Notes, "containerd 1.7 releases that copy config.toml into OTEL_* variables treat sampling_ratio 0 as unset and sample every request")
	}
	if empty && doc.lookup("version") == nil {
		doc.lines = append([]string{"version = 2\n"}, doc.lines...)
		if doc, err = parseTOML(doc.bytes()); err != nil {
			return ContainerdConfigResult{}, err
		}
		res.Settings = append(res.Settings, "version = 2")
	}
	if err := doc.set(otlpTable, otlp); err != nil {
		return ContainerdConfigResult{}, err
	}
	if doc, err = parseTOML(doc.bytes()); err != nil {
		return ContainerdConfigResult{}, err
	}
	if err := doc.set(tracingTable, tracing); err != nil {
		return ContainerdConfigResult{}, err
	}
	out := doc.bytes()
	// Check: the result parses and has exactly the values set.
	check, err := parseTOML(out)
	if err != nil {
		return ContainerdConfigResult{}, fmt.Errorf("check edited configuration: %w", err)
	}
	for _, s := range []struct {
		table []string
		kvs   []tomlKV
	}{{otlpTable, otlp}, {tracingTable, tracing}} {
		for _, kv := range s.kvs {
			it := check.lookup(append(append([]string(nil), s.table...), kv.key)...)
			if it == nil || it.raw != kv.raw {
				return ContainerdConfigResult{}, fmt.Errorf("check edited configuration: %s.%s not set", tomlPath(s.table), kv.key)
			}
			res.Settings = append(res.Settings, tomlPath(s.table)+"."+kv.key+" = "+kv.raw)
		}
	}
	res.Config = out
	return res, nil
}
