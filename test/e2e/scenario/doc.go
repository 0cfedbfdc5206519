// Package scenario runs trace-capture's whole job on a local control plane:
// real etcd and kube-apiserver started from kubeadm-style static-pod
// manifests by a minimal kubelet stand-in, tracing switched on by the
// project's own enable code (the plan, journal and manifest edits of the
// cluster capture), a realistic load, `trace-capture record` receiving, a
// byte-for-byte restore with the components restarted without tracing, and
// `trace-capture analyze`. `make demo` and the end-to-end test both run it.
package scenario
