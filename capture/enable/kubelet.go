package enable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// KubeletResult is an edited KubeletConfiguration.
type KubeletResult struct {
	// Config is the new file; it equals the input when AlreadyEnabled.
	Config []byte
	// AlreadyEnabled is true when the file already has a tracing section; Reason says so.
	AlreadyEnabled bool
	Reason         string
	// Reformatted is true when the file could not be edited in place and was re-serialized (its
	// comments are kept, its layout may change). Restore still puts the original bytes back.
	Reformatted bool
	Notes       []string
}

// CheckKubeletVersion fails for kubelet versions without tracing (before 1.25).
func CheckKubeletVersion(v Version) error {
	if v.Major != 1 || !v.AtLeast(1, 25, 0) {
		return fmt.Errorf("kubelet %s: %w: tracing needs Kubernetes 1.25 or later", v, ErrUnsupported)
	}
	return nil
}

// EditKubeletConfig adds `tracing: {endpoint, samplingRatePerMillion}` to a KubeletConfiguration
// file (YAML or JSON) and, for kubelets before 1.27, the KubeletTracing feature gate. Everything
// else is kept byte for byte when the file is block-style YAML or JSON: the new keys are appended
// (a YAML file is appended to, a JSON object gets members before its closing brace).
func EditKubeletConfig(config []byte, v Version, t Target) (KubeletResult, error) {
	res, err := editKubeletConfig(config, v, t)
	if err != nil {
		return KubeletResult{}, fmt.Errorf("edit kubelet configuration: %w", err)
	}
	return res, nil
}

func editKubeletConfig(config []byte, v Version, t Target) (KubeletResult, error) {
	if err := t.Validate(); err != nil {
		return KubeletResult{}, err
	}
	if err := CheckKubeletVersion(v); err != nil {
		return KubeletResult{}, err
	}
	if len(config) > maxManifestSize {
		return KubeletResult{}, fmt.Errorf("the file is larger than %d bytes", maxManifestSize)
	}
	if err := singleDocument(config); err != nil {
		return KubeletResult{}, err
	}
	before, err := decodeGeneric(config)
	if err != nil {
		return KubeletResult{}, err
	}
	if kind, _ := before["kind"].(string); kind != "KubeletConfiguration" {
		return KubeletResult{}, fmt.Errorf("kind is %q, not KubeletConfiguration", kind)
	}
	res := KubeletResult{Config: config}
	if tr, ok := before["tracing"]; ok && tr != nil {
		res.AlreadyEnabled, res.Reason = true, "the kubelet configuration already has a tracing section"
		return res, nil
	}
	needGate := !v.AtLeast(1, 27, 0)
	if needGate {
		res.Notes = append(res.Notes, "kubelet before 1.27 needs the KubeletTracing feature gate (alpha)")
	}

	var out []byte
	trimmed := bytes.TrimLeft(config, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		out, err = kubeletJSON(config, before, needGate, t)
	} else {
		out, err = kubeletYAMLAppend(config, needGate, t)
		if err == nil && verifyKubeletConfig(before, out, needGate, t) != nil {
			err = errNotInPlace
		}
		if errors.Is(err, errNotInPlace) {
			out, err = kubeletYAMLReencode(config, needGate, t)
			res.Reformatted = true
			res.Notes = append(res.Notes, "the kubelet configuration is re-serialized (its layout changes; restore puts the original bytes back)")
		}
	}
	if err != nil {
		return KubeletResult{}, err
	}
	if err := verifyKubeletConfig(before, out, needGate, t); err != nil {
		return KubeletResult{}, fmt.Errorf("check edited configuration: %w", err)
	}
	res.Config = out
	return res, nil
}

var errNotInPlace = errors.New("cannot edit in place")

func tracingYAML(t Target, indent string) string {
	return fmt.Sprintf("%sendpoint: %s\n%ssamplingRatePerMillion: %d\n", indent, yamlString(t.Endpoint), indent, t.SamplingRatePerMillion)
}

// kubeletYAMLAppend edits a block-style YAML mapping by appending keys and, for an existing
// featureGates block, inserting one line. It returns errNotInPlace for layouts it does not edit.
func kubeletYAMLAppend(config []byte, needGate bool, t Target) ([]byte, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(config, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind != yaml3.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml3.MappingNode {
		return nil, errors.New("the document is not a mapping")
	}
	root := doc.Content[0]
	if root.Style&yaml3.FlowStyle != 0 || bytes.Contains(config, []byte("\n...")) {
		return nil, errNotInPlace
	}
	lines := strings.SplitAfter(string(config), "\n")
	var tracingNull *yaml3.Node
	var gates *yaml3.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		if k.Column != 1 {
			return nil, errNotInPlace
		}
		switch k.Value {
		case "tracing":
			tracingNull = k
			if val.Line != k.Line || k.Line < 1 || k.Line > len(lines) {
				return nil, errNotInPlace
			}
		case "featureGates":
			gates = val
		}
	}
	if tracingNull != nil {
		// "tracing:" or "tracing: null" on a line of its own: drop the line.
		if !regexpTracingNull(lines[tracingNull.Line-1]) {
			return nil, errNotInPlace
		}
		lines[tracingNull.Line-1] = ""
	}
	gateLine := ""
	if needGate && gates != nil {
		if gates.Kind == yaml3.ScalarNode && gates.Tag == "!!null" {
			return nil, errNotInPlace
		}
		if gates.Kind != yaml3.MappingNode || gates.Style&yaml3.FlowStyle != 0 || len(gates.Content) == 0 {
			return nil, errNotInPlace
		}
		done := false
		for i := 0; i+1 < len(gates.Content); i += 2 {
			k, val := gates.Content[i], gates.Content[i+1]
			if k.Value != "KubeletTracing" {
				continue
			}
			if val.Kind != yaml3.ScalarNode || val.Style != 0 || val.Line < 1 || val.Line > len(lines) {
				return nil, errNotInPlace
			}
			if b, err := strconv.ParseBool(val.Value); err == nil && b {
				done = true
				break
			}
			// Replace the plain scalar in place.
			l := lines[val.Line-1]
			col := val.Column - 1
			if col < 0 || col+len(val.Value) > len(l) || l[col:col+len(val.Value)] != val.Value {
				return nil, errNotInPlace
			}
			lines[val.Line-1] = l[:col] + "true" + l[col+len(val.Value):]
			done = true
		}
		if !done {
			first := gates.Content[0]
			if first.Line < 1 || first.Line > len(lines) {
				return nil, errNotInPlace
			}
			gateLine = strings.Repeat(" ", first.Column-1) + "KubeletTracing: true\n"
			lines[first.Line-1] = gateLine + lines[first.Line-1]
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
	}
	s := b.String()
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if needGate && gates == nil {
		s += "featureGates:\n  KubeletTracing: true\n"
	}
	s += "tracing:\n" + tracingYAML(t, "  ")
	return []byte(s), nil
}

func regexpTracingNull(line string) bool {
	l := strings.TrimSpace(line)
	if i := strings.Index(l, " #"); i >= 0 {
		l = strings.TrimSpace(l[:i])
	}
	switch l {
	case "tracing:", "tracing: null", "tracing: ~", "tracing: Null", "tracing: NULL":
		return true
	}
	return false
}

// kubeletYAMLReencode sets the keys on the parsed document and encodes it again (2-space indent,
// comments kept).
func kubeletYAMLReencode(config []byte, needGate bool, t Target) ([]byte, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(config, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind != yaml3.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml3.MappingNode {
		return nil, errors.New("the document is not a mapping")
	}
	root := doc.Content[0]
	root.Style &^= yaml3.FlowStyle
	var tracing yaml3.Node
	if err := tracing.Encode(map[string]any{"endpoint": t.Endpoint, "samplingRatePerMillion": t.SamplingRatePerMillion}); err != nil {
		return nil, err
	}
	setMapKey(root, "tracing", &tracing)
	if needGate {
		gates := mapValue(root, "featureGates")
		if gates == nil || gates.Kind != yaml3.MappingNode {
			gates = &yaml3.Node{Kind: yaml3.MappingNode, Tag: "!!map"}
			setMapKey(root, "featureGates", gates)
		}
		setMapKey(gates, "KubeletTracing", &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	var buf bytes.Buffer
	enc := yaml3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mapValue(m *yaml3.Node, key string) *yaml3.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapKey(m *yaml3.Node, key string, val *yaml3.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = val
			return
		}
	}
	m.Content = append(m.Content, &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: key}, val)
}

// kubeletJSON inserts the members before the closing brace of a JSON object; when featureGates
// must be merged into an existing object, or tracing is null, the object is re-marshalled.
func kubeletJSON(config []byte, before map[string]any, needGate bool, t Target) ([]byte, error) {
	_, hasTracing := before["tracing"]
	_, hasGates := before["featureGates"]
	endpoint, _ := json.Marshal(t.Endpoint)
	member := fmt.Sprintf(`"tracing":{"endpoint":%s,"samplingRatePerMillion":%d}`, endpoint, t.SamplingRatePerMillion)
	if needGate {
		member = `"featureGates":{"KubeletTracing":true},` + member
	}
	if !hasTracing && !(needGate && hasGates) {
		end := bytes.LastIndexByte(config, '}')
		if end < 0 {
			return nil, errors.New("no closing brace")
		}
		start := bytes.IndexByte(config, '{')
		sep := ","
		if len(bytes.TrimSpace(config[start+1:end])) == 0 {
			sep = ""
		}
		out := make([]byte, 0, len(config)+len(member)+2)
		out = append(out, config[:end]...)
		out = append(out, sep+member...)
		out = append(out, config[end:]...)
		return out, nil
	}
	obj := map[string]any{}
	for k, v := range before {
		obj[k] = v
	}
	obj["tracing"] = map[string]any{"endpoint": t.Endpoint, "samplingRatePerMillion": t.SamplingRatePerMillion}
	if needGate {
		gates, _ := obj["featureGates"].(map[string]any)
		if gates == nil {
			gates = map[string]any{}
		}
		gates["KubeletTracing"] = true
		obj["featureGates"] = gates
	}
	out, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// verifyKubeletConfig checks that the edited file decodes to the original plus exactly the
// tracing section (and the gate).
func verifyKubeletConfig(before map[string]any, out []byte, needGate bool, t Target) error {
	if err := singleDocument(out); err != nil {
		return err
	}
	after, err := decodeGeneric(out)
	if err != nil {
		return err
	}
	var cfg struct {
		Tracing *struct {
			Endpoint               string `json:"endpoint"`
			SamplingRatePerMillion *int32 `json:"samplingRatePerMillion"`
		} `json:"tracing"`
		FeatureGates map[string]bool `json:"featureGates"`
	}
	j, err := yaml.YAMLToJSON(out)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(j, &cfg); err != nil {
		return err
	}
	if cfg.Tracing == nil || cfg.Tracing.Endpoint != t.Endpoint || cfg.Tracing.SamplingRatePerMillion == nil || *cfg.Tracing.SamplingRatePerMillion != t.SamplingRatePerMillion {
		return errors.New("tracing section missing or wrong")
	}
	if needGate && !cfg.FeatureGates["KubeletTracing"] {
		return errors.New("KubeletTracing feature gate missing")
	}
	// Everything else is unchanged.
	strip := func(m map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			if k == "tracing" {
				continue
			}
			if k == "featureGates" && needGate {
				g, _ := v.(map[string]any)
				gc := map[string]any{}
				for gk, gv := range g {
					if gk != "KubeletTracing" {
						gc[gk] = gv
					}
				}
				if len(gc) == 0 {
					continue
				}
				v = gc
			}
			c[k] = v
		}
		return c
	}
	if !reflect.DeepEqual(strip(before), strip(after)) {
		return errors.New("other settings changed")
	}
	return nil
}
