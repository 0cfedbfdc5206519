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
//     count orphans;
//  2. classify: mark long-lived spans (watches, streams) so they never rank
//     as slow requests;
//  3. skew: estimate each host's clock offset from client/server pairs and
//     adjust within a cap, reporting every offset;
//  4. per trace: sanitize children that overflow their parent, compute self
//     time and the critical path (Jaeger's last-finishing-child walk);
//  5. aggregate: operations, cross-component edges, root operations, slow
//     paths, errors, Kubernetes groupings;
//  6. quality: warnings about orphans, broken propagation, silent sources,
//     drops;
//  7. baseline: compare with a previous Result.
//
// Passes never stop on bad data: they count it and add warnings. The output
// is deterministic: the same input gives byte-identical JSON.
package analyze
