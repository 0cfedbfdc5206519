// Package localcp runs a local control plane: a real etcd and a real
// kube-apiserver as child processes of the caller, on free loopback ports, with
// everything they need generated into one directory (a CA and serving
// certificate, a service-account signing key, a static token file with an admin
// in system:masters and an unprivileged user).
//
// The package only starts, checks and stops processes; it knows nothing of
// tracing. Callers pass extra command-line arguments (for example the tracing
// flags written by the project's enable code) to Start and to the Restart
// methods. Children run in their own process group, so a Ctrl-C at a terminal
// reaches the caller only, which stops them in order (kube-apiserver first,
// then etcd) with SIGTERM, and with SIGKILL when StopTimeout expires. On Linux
// a child is also killed when the caller dies.
package localcp
