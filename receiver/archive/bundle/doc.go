// Package bundle reads and writes bundle.tgz, the one file a capture leaves.
//
// A bundle is a gzip-compressed tar archive. Its first entry is
// manifest.json (the Manifest: what was captured, from where, and every span
// that was received but not kept, with the reason); the span archives follow
// under spans/, the tool's own log under logs/, and mode-specific files
// (cluster facts, the plan, Kubernetes Events) under their own folders.
//
// Bundles travel through bug trackers, so the reader treats them as
// untrusted: it accepts only regular files and folders with clean relative
// names, refuses links, devices, path traversal and absurd sizes, and bounds
// how much it decompresses.
package bundle
