// Package e2e holds what the end-to-end tests run on: localcp (real etcd
// and kube-apiserver on loopback), load (a realistic client-go load), and
// scenario (the whole trace-capture job on them, with its test under the
// build tag e2e). `make e2e` builds the components with
// hack/build-component.sh and runs it; `make demo` runs the same scenario.
package e2e
