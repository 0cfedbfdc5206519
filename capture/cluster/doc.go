// Package cluster runs a cluster capture: it switches OpenTelemetry tracing on in the cluster's
// core components for a window, receives their spans on every node, restores every change, and
// writes one bundle.
//
// Run goes: Preflight (what the API says: flavour, nodes, versions, what is already traced, RBAC)
// -> MakePlan -> confirmation -> agents (a short-lived namespace with a privileged host-network
// DaemonSet running `trace-capture agent`, package agent) -> enable, one control-plane node at a
// time -> window -> restore, with the same health gates -> collect (span archives through
// port-forwarding, agent logs, cluster facts, Events) -> bundle -> delete everything created and
// verify it is gone.
//
// The invariant is that the cluster ends as it started, on every exit path. Before any change the
// node's journal location is written to the Node object (annotation JournalAnnotation) and the
// agent journals every original on the node; the restore is registered before each step that can
// fail, runs under a context that the interrupt does not cancel, and is also armed on every agent
// as a dead man's switch (window + grace). A second interrupt (Options.Abandon) stops waiting for
// it and returns a *RestoreIncompleteError carrying the exact `trace-capture restore` command;
// Restore finds the journals from the annotations and undoes them, idempotently.
package cluster
