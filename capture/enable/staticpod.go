package enable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TracingVolumeName names the hostPath volume that carries kube-apiserver's TracingConfiguration
// into its static pod.
const TracingVolumeName = "trace-capture-tracing-config"

// StaticPodEdit says how to switch tracing on in a static-pod manifest.
type StaticPodEdit struct {
	// Component is APIServer or Etcd. The container of that name is edited (or the only one).
	Component Component
	// Version of the component; zero means: read it from the container's image tag.
	Version Version
	Target  Target
	// TracingConfigPath is, for kube-apiserver, the node path of the TracingConfiguration file. It
	// is mounted (hostPath, type File, read-only) at the same path in the container.
	TracingConfigPath string
}

// StaticPodResult is an edited manifest.
type StaticPodResult struct {
	// Manifest is the new manifest; it equals the input when AlreadyEnabled.
	Manifest []byte
	// Version is the version used (from the edit, or from the image tag).
	Version Version
	// Image is the container's image.
	Image string
	// Container is the name of the edited container.
	Container string
	// ArgsResult holds the flags added or replaced, AlreadyEnabled, Reason and Notes.
	ArgsResult
}

// maxManifestSize bounds the manifests EditStaticPod parses.
const maxManifestSize = 1 << 20

// EditStaticPod switches tracing on in a static-pod manifest (YAML or JSON) for kube-apiserver or
// etcd: it sets the flags in the container's command (or args) and, for kube-apiserver, adds a
// hostPath volume and mount for the TracingConfiguration file.
//
// The manifest is decoded and re-encoded the way kubeadm writes it (sigs.k8s.io/yaml, keys in
// sorted order), so a kubeadm-generated manifest changes only where tracing is added. Fields unknown
// to this build's Pod type are kept, because the edit works on the generic document.
func EditStaticPod(manifest []byte, e StaticPodEdit) (StaticPodResult, error) {
	res, err := editStaticPod(manifest, e)
	if err != nil {
		return StaticPodResult{}, fmt.Errorf("edit %s static pod manifest: %w", e.Component, err)
	}
	return res, nil
}

func editStaticPod(manifest []byte, e StaticPodEdit) (StaticPodResult, error) {
	if e.Component != APIServer && e.Component != Etcd {
		return StaticPodResult{}, fmt.Errorf("%w: %s does not run as a static pod", ErrUnsupported, e.Component)
	}
	if len(manifest) > maxManifestSize {
		return StaticPodResult{}, fmt.Errorf("manifest is larger than %d bytes", maxManifestSize)
	}
	if err := singleDocument(manifest); err != nil {
		return StaticPodResult{}, err
	}
	obj, err := decodeGeneric(manifest)
	if err != nil {
		return StaticPodResult{}, err
	}
	if kind, _ := obj["kind"].(string); kind != "Pod" {
		return StaticPodResult{}, fmt.Errorf("kind is %q, not Pod", kind)
	}
	if apiVersion, _ := obj["apiVersion"].(string); apiVersion != "v1" {
		return StaticPodResult{}, fmt.Errorf("apiVersion is %q, not v1", apiVersion)
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return StaticPodResult{}, errors.New("no spec")
	}
	containers, ok := spec["containers"].([]any)
	if !ok || len(containers) == 0 {
		return StaticPodResult{}, errors.New("no containers")
	}
	idx := -1
	for i, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == string(e.Component) {
			idx = i
		}
	}
	if idx < 0 && len(containers) == 1 {
		idx = 0
	}
	if idx < 0 {
		return StaticPodResult{}, fmt.Errorf("no container named %q among %d containers", e.Component, len(containers))
	}
	c, ok := containers[idx].(map[string]any)
	if !ok {
		return StaticPodResult{}, errors.New("container is not an object")
	}
	res := StaticPodResult{Manifest: manifest, Version: e.Version}
	res.Container, _ = c["name"].(string)
	res.Image, _ = c["image"].(string)
	if res.Version.IsZero() {
		if res.Image == "" {
			return StaticPodResult{}, errors.New("no version given and the container has no image")
		}
		v, err := ParseVersion(res.Image)
		if err != nil {
			return StaticPodResult{}, fmt.Errorf("no version given: %w", err)
		}
		want := 1
		if e.Component == Etcd {
			want = 3
		}
		if v.Major != want {
			return StaticPodResult{}, fmt.Errorf("no version given and the image tag of %s is not a %s version; pass the version (for example from `%s --version`)", res.Image, e.Component, e.Component)
		}
		res.Version = v
	}

	command, err := stringList(c["command"], "command")
	if err != nil {
		return StaticPodResult{}, err
	}
	args, err := stringList(c["args"], "args")
	if err != nil {
		return StaticPodResult{}, err
	}
	field, list := "command", command
	if len(args) > 0 {
		field, list = "args", args
	}
	if len(list) == 0 {
		return StaticPodResult{}, errors.New("the container has neither command nor args")
	}
	if len(command) > 0 {
		switch filepath.Base(command[0]) {
		case "sh", "bash", "dash", "ash", "busybox", "env":
			return StaticPodResult{}, fmt.Errorf("%w: the container runs %s; only a direct command line can be edited", ErrUnsupported, command[0])
		}
	}
	env, err := containerEnv(c["env"])
	if err != nil {
		return StaticPodResult{}, err
	}
	ar, err := EnableArgs(ArgsInput{
		Component:         e.Component,
		Version:           res.Version,
		Args:              list,
		Env:               env,
		TracingConfigPath: e.TracingConfigPath,
	}, e.Target)
	if err != nil {
		return StaticPodResult{}, err
	}
	res.ArgsResult = ar
	if ar.AlreadyEnabled {
		return res, nil
	}
	c[field] = anyList(ar.Args)

	if e.Component == APIServer {
		if err := CheckTracingConfigPath(e.TracingConfigPath); err != nil {
			return StaticPodResult{}, err
		}
		if err := addTracingVolume(spec, c, e.TracingConfigPath); err != nil {
			return StaticPodResult{}, err
		}
	}

	j, err := json.Marshal(obj)
	if err != nil {
		return StaticPodResult{}, err
	}
	out, err := yaml.JSONToYAML(j)
	if err != nil {
		return StaticPodResult{}, err
	}
	if err := verifyStaticPod(out, res.Container, idx, field, ar.Flags); err != nil {
		return StaticPodResult{}, fmt.Errorf("check edited manifest: %w", err)
	}
	res.Manifest = out
	return res, nil
}

// CheckTracingConfigPath checks the path given for kube-apiserver's TracingConfiguration file.
func CheckTracingConfigPath(p string) error {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return fmt.Errorf("tracing configuration path %q is not an absolute, clean file path", p)
	}
	if strings.ContainsAny(p, "\x00\n\r,") {
		return fmt.Errorf("tracing configuration path %q contains a character that cannot be used in a flag", p)
	}
	return nil
}

func addTracingVolume(spec, c map[string]any, p string) error {
	volumes, err := objectList(spec["volumes"], "volumes")
	if err != nil {
		return err
	}
	for _, v := range volumes {
		if v["name"] == TracingVolumeName {
			return fmt.Errorf("the pod already has a volume named %q", TracingVolumeName)
		}
	}
	mounts, err := objectList(c["volumeMounts"], "volumeMounts")
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m["name"] == TracingVolumeName {
			return fmt.Errorf("the container already mounts a volume named %q", TracingVolumeName)
		}
		if mp, _ := m["mountPath"].(string); filepath.Clean(mp) == p {
			return fmt.Errorf("the container already mounts something at %s", p)
		}
	}
	spec["volumes"] = append(toAny(volumes), map[string]any{
		"name": TracingVolumeName,
		"hostPath": map[string]any{
			"path": p,
			"type": string(corev1.HostPathFile),
		},
	})
	c["volumeMounts"] = append(toAny(mounts), map[string]any{
		"name":      TracingVolumeName,
		"mountPath": p,
		"readOnly":  true,
	})
	return nil
}

// verifyStaticPod decodes the edited manifest with the Pod type and checks the flags are there.
func verifyStaticPod(manifest []byte, container string, idx int, field string, flags []string) error {
	var pod corev1.Pod
	if err := yaml.Unmarshal(manifest, &pod); err != nil {
		return err
	}
	if idx >= len(pod.Spec.Containers) || pod.Spec.Containers[idx].Name != container {
		return errors.New("container moved")
	}
	list := pod.Spec.Containers[idx].Command
	if field == "args" {
		list = pod.Spec.Containers[idx].Args
	}
	for _, f := range flags {
		if !slices.Contains(list, f) {
			return fmt.Errorf("flag %s missing", f)
		}
	}
	return nil
}

// singleDocument fails unless data holds exactly one YAML (or JSON) document.
func singleDocument(data []byte) error {
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		var node yaml3.Node
		err := dec.Decode(&node)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("parse YAML: %w", err)
		}
		n++
		if n > 1 {
			return errors.New("the file holds more than one YAML document")
		}
	}
	if n == 0 {
		return errors.New("the file is empty")
	}
	return nil
}

// decodeGeneric decodes one YAML or JSON object into maps, keeping numbers exact.
func decodeGeneric(data []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if obj == nil {
		return nil, errors.New("the document is not an object")
	}
	return obj, nil
}

func stringList(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", what)
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a string", what, i)
		}
		out[i] = s
	}
	return out, nil
}

func objectList(v any, what string) ([]map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", what)
	}
	out := make([]map[string]any, len(l))
	for i, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not an object", what, i)
		}
		out[i] = m
	}
	return out, nil
}

func containerEnv(v any) ([]string, error) {
	l, err := objectList(v, "env")
	if err != nil {
		return nil, err
	}
	var env []string
	for _, m := range l {
		name, _ := m["name"].(string)
		value, ok := m["value"].(string)
		if name != "" && ok {
			env = append(env, name+"="+value)
		} else if name != "" && m["valueFrom"] == nil {
			env = append(env, name+"=")
		}
	}
	return env, nil
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func toAny(l []map[string]any) []any {
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = x
	}
	return out
}
