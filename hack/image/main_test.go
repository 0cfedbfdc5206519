package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestBuildImage builds an image from a stand-in binary and reads it back
// as an OCI layout: one image, tagged, whose entrypoint is the binary at
// /trace-capture with the same bytes and mode 0755.
func TestBuildImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!fake binary\x00\x01"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	if err := build(bin, "localhost/trace-capture:test", out); err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "oci")
	if err := os.Mkdir(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("tar", "-xf", out, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v %s", err, b)
	}
	p, err := layout.FromPath(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "localhost/trace-capture:test" {
		t.Fatalf("index: %+v %v", m, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/trace-capture" || cfg.OS != "linux" {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("no trace-capture in the layer")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "trace-capture" {
			b, _ := io.ReadAll(tr)
			if string(b) != "#!fake binary\x00\x01" || h.Mode != 0o755 {
				t.Fatalf("binary in image: %q mode %o", b, h.Mode)
			}
			return
		}
	}
}
