package localcp

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// BinaryVersion runs "path --version" and returns the version it reports with
// a leading "v": "v3.6.16" for etcd ("etcd Version: 3.6.16"), "v1.37.2" for
// kube-apiserver ("Kubernetes v1.37.2").
func BinaryVersion(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return "", fmt.Errorf("read version of %s: %w", path, err)
	}
	return v, nil
}

var (
	etcdVersionRE = regexp.MustCompile(`(?m)^etcd Version:\s*v?(\d+\.\d+\.\d+\S*)\s*$`)
	kubeVersionRE = regexp.MustCompile(`(?m)^Kubernetes\s+(v\d+\.\d+\.\d+\S*)\s*$`)
)

// parseVersion finds the version in the output of etcd or kube-apiserver
// --version.
func parseVersion(out string) (string, error) {
	if m := etcdVersionRE.FindStringSubmatch(out); m != nil {
		return "v" + m[1], nil
	}
	if m := kubeVersionRE.FindStringSubmatch(out); m != nil {
		return m[1], nil
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return "", fmt.Errorf("no version in %q", first)
}
