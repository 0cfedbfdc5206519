package enable

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Component is a program whose tracing trace-capture switches on.
type Component string

// The components, named as their binaries are.
const (
	APIServer  Component = "kube-apiserver"
	Etcd       Component = "etcd"
	Kubelet    Component = "kubelet"
	CRIO       Component = "crio"
	Containerd Component = "containerd"
)

// Components lists every component in the order a capture enables them.
var Components = []Component{Etcd, APIServer, Containerd, CRIO, Kubelet}

// ParseComponent accepts a component name or a common alias ("apiserver", "cri-o").
func ParseComponent(s string) (Component, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "kube-apiserver", "apiserver":
		return APIServer, nil
	case "etcd":
		return Etcd, nil
	case "kubelet":
		return Kubelet, nil
	case "crio", "cri-o":
		return CRIO, nil
	case "containerd":
		return Containerd, nil
	}
	return "", fmt.Errorf("unknown component %q (want kube-apiserver, etcd, kubelet, crio or containerd)", s)
}

// Version is a component's version. Pre-release versions sort before their release, so a
// pre-release of a version that introduced something is treated as not having it.
type Version struct {
	Major, Minor, Patch int
	// Pre is the pre-release part ("rc.1" in "1.31.0-rc.1"), without build metadata.
	Pre string
	// Raw is the string the version was parsed from.
	Raw string
}

var versionPattern = regexp.MustCompile(`^v?(\d{1,6})\.(\d{1,6})(?:\.(\d{1,9}))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?`)

// ParseVersion finds a version in s, which may be a bare version ("v1.37.2", "3.6.16"), an image
// reference ("registry.k8s.io/etcd:3.5.21-0", optionally with a digest), a node's container runtime
// version ("containerd://2.4.2", "cri-o://1.36.3") or the output of a
// --version command ("containerd github.com/containerd/containerd/v2 v2.4.2 abc", "etcd Version:
// 3.6.16"). For an image reference only the tag is read. The etcd image's "-0" suffix is not a
// pre-release; a "-N" suffix made only of digits is treated as a packaging revision.
func ParseVersion(s string) (Version, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Version{}, errors.New("parse version: empty string")
	}
	if i := strings.Index(in, "://"); i > 0 && !strings.ContainsAny(in, " \t\n") {
		// A node's status.nodeInfo.containerRuntimeVersion: "containerd://2.4.2".
		in = in[i+3:]
	}
	if !strings.ContainsAny(in, " \t\n") && strings.Contains(in, "/") {
		// An image reference: drop the digest, then take the tag.
		ref := in
		if i := strings.Index(ref, "@"); i >= 0 {
			ref = ref[:i]
		}
		slash := strings.LastIndex(ref, "/")
		colon := strings.LastIndex(ref, ":")
		if colon <= slash {
			return Version{}, fmt.Errorf("parse version: image %q has no tag", s)
		}
		v, ok := matchVersion(ref[colon+1:])
		if !ok {
			return Version{}, fmt.Errorf("parse version: image tag %q is not a version", ref[colon+1:])
		}
		v.Raw = s
		return v, nil
	}
	for _, tok := range strings.Fields(in) {
		if v, ok := matchVersion(tok); ok {
			v.Raw = s
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("parse version: no version in %q", truncate(s, 80))
}

func matchVersion(tok string) (Version, bool) {
	m := versionPattern.FindStringSubmatch(tok)
	if m == nil {
		return Version{}, false
	}
	var v Version
	var err error
	if v.Major, err = strconv.Atoi(m[1]); err != nil {
		return Version{}, false
	}
	if v.Minor, err = strconv.Atoi(m[2]); err != nil {
		return Version{}, false
	}
	if m[3] != "" {
		if v.Patch, err = strconv.Atoi(m[3]); err != nil {
			return Version{}, false
		}
	}
	pre := m[4]
	if isDigits(pre) {
		// etcd images are tagged "3.5.21-0"; Debian packages "1.7.24-1": revisions, not pre-releases.
		pre = ""
	}
	v.Pre = pre
	return v, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// MustParseVersion is ParseVersion for constants in tests and tables; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// IsZero tells whether v is the zero Version (unknown).
func (v Version) IsZero() bool { return v == Version{} }

// String returns "MAJOR.MINOR.PATCH[-PRE]".
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// MarshalText encodes the version as String does.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses a version written by MarshalText.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// AtLeast tells whether v >= major.minor.patch; a pre-release of that exact version is less.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	if v.Patch != patch {
		return v.Patch > patch
	}
	return v.Pre == ""
}

// Target says where and how much a component exports.
type Target struct {
	// Endpoint is the OTLP/gRPC receiver as host:port, for example "127.0.0.1:4317". Every
	// component can export over gRPC.
	Endpoint string `json:"endpoint"`
	// HTTPEndpoint is the OTLP/HTTP receiver as host:port. Only containerd 1.6/1.7 needs it (its
	// TOML configuration is read differently by different patch releases when it is gRPC).
	HTTPEndpoint string `json:"httpEndpoint,omitempty"`
	// SamplingRatePerMillion is the share of root spans sampled, 0..1,000,000. 0 records only
	// spans whose parent was sampled (every component samples parent-based).
	SamplingRatePerMillion int32 `json:"samplingRatePerMillion"`
	// ServiceInstanceID identifies this node's instance (the node name); etcd reports it as
	// service.instance.id. Empty leaves the component's default.
	ServiceInstanceID string `json:"serviceInstanceID,omitempty"`
}

// Validate checks the endpoints and the rate.
func (t Target) Validate() error {
	if err := checkHostPort(t.Endpoint); err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	if t.HTTPEndpoint != "" {
		if err := checkHostPort(t.HTTPEndpoint); err != nil {
			return fmt.Errorf("HTTP endpoint: %w", err)
		}
	}
	if t.SamplingRatePerMillion < 0 || t.SamplingRatePerMillion > 1_000_000 {
		return fmt.Errorf("sampling rate %d per million is outside 0..1000000", t.SamplingRatePerMillion)
	}
	if strings.ContainsAny(t.ServiceInstanceID, " \t\r\n\"'\\,=;`$") {
		return fmt.Errorf("service instance ID %q contains a character that cannot be passed safely", t.ServiceInstanceID)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.ContainsAny(host, "/ \t\r\n\"'\\") {
		return fmt.Errorf("%q: invalid host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: invalid port", s)
	}
	return nil
}

// samplingRatio returns the rate as a ratio 0..1, formatted without trailing zeros.
func (t Target) samplingRatio() string {
	return strconv.FormatFloat(float64(t.SamplingRatePerMillion)/1e6, 'f', -1, 64)
}

// ErrUnsupported is returned (wrapped) when a component version or configuration layout cannot be
// handled safely.
var ErrUnsupported = errors.New("unsupported")

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
