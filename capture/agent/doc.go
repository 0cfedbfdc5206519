// Package agent is the node side of a cluster capture: the program that `trace-capture agent` runs
// in a privileged, host-network pod on every node.
//
// An Agent receives OTLP on loopback (free ports), writes a span archive under a byte budget,
// switches tracing on in the node's components through package enable (every original journalled
// first, package journal), restarts them one at a time behind health gates, and restores them. It
// is driven by the CLI over a small HTTP control API on loopback, reached through the API server's
// port-forwarding, never through an exposed port (Client is the CLI's side).
//
// The agent protects the node on its own:
//
//   - On start it first restores every journal record left on the node (by an agent that was
//     killed, or a run that was abandoned), before it accepts anything else.
//   - A dead man's switch: the enable request carries a deadline (window + grace). If the CLI has not
//     asked for the restore by then, the agent restores on its own.
//   - When its context ends (the pod is deleted or the node drains it) it restores before it exits.
//   - The receiver keeps running until the restore is verified, so no component is left exporting
//     to a receiver that is gone.
package agent
