// Package enable computes and applies, on one node, the changes that switch OpenTelemetry tracing
// on in kube-apiserver, etcd, the kubelet, CRI-O and containerd, and undoes them byte for byte.
//
// The package has three layers:
//
//   - Pure functions from a component's version, its current configuration bytes or command line,
//     and a Target (where to send spans) to the new bytes or arguments: EnableArgs,
//     APIServerTracingConfig, EditStaticPod, EditKubeletConfig, CRIODropIn, ContainerdEnv,
//     EditContainerdConfig, EditEnvFile. They never touch the file system.
//   - BuildPlan reads the files of one component below a host root and returns a Plan: the exact
//     flags, environment and file changes, and what has to restart. A component whose tracing is
//     already on gets a Plan with AlreadyEnabled set and no changes: it is left alone.
//   - Apply writes a Plan, journalling every original first (package journal), and Restore puts
//     the originals back. Both work below a host root, so the same code runs on a node and in a
//     privileged pod that mounts the node's root file system.
//
// Discovery helpers (FindProcesses, DiscoverKubelet, DiscoverContainerd, DiscoverCRIO) find the
// configuration files from a running process's command line, so nothing assumes fixed paths or
// systemd.
package enable
