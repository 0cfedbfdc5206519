// Package analyze turns a stream of OTLP trace records into a Result: where
// the time went across components (kube-apiserver → etcd, kubelet → CRI-O or
// containerd, ...), on which operations, how often and how slowly, with
// concrete slow traces as proof.
//
// Run reads raw protobuf ExportTraceServiceRequest records from a
// RecordSource with a lean decoder that keeps only what the analysis needs
// in a compact form (ids as integers, interned strings, no per-span maps),
// then runs a pipeline of small passes over plain data:
//
//  1. assemble: group spans into traces, drop duplicates, link parents,
//     count orphans (assemble.go);
//  2. join: match kube-apiserver "authentication" spans left alone in a
//     1-span trace to the request they authenticated (k8s.go);
//  3. skew: estimate each host's clock offset from client/server pairs and
//     adjust within a cap, reporting every offset (skew.go);
//  4. per trace (tracework.go): mark long-lived spans (watches, streams) so
//     they never rank as slow requests, compute self time, sanitize
//     children that overflow their parent and walk the critical path
//     (Jaeger's last-finishing-child algorithm);
//  5. aggregate: operations, cross-component edges, root operations, slow
//     paths, errors, Kubernetes groupings (aggregate.go, build.go);
//  6. quality: warnings about orphans, broken propagation, silent sources,
//     drops (warnings.go);
//  7. baseline: compare with a previous Result (baseline.go).
//
// Large arrays live in an arena of huge-page mappings released when Run
// returns (arena.go): a million spans take about 150 bytes of RSS each.
//
// Passes never stop on bad data: they count it and add warnings. The output
// is deterministic: the same input gives byte-identical JSON.
package analyze
