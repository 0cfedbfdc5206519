// Package e2e holds the end-to-end tests that run the real etcd and
// kube-apiserver (built by hack/build-component.sh) on loopback. Its tests
// carry the build tag e2e, so that "go test ./..." does not run them:
//
//	go test -tags e2e -timeout 30m ./test/e2e/
//
// E2E_ETCD_BINARY and E2E_KUBE_APISERVER_BINARY name prebuilt binaries;
// otherwise the tests call hack/build-component.sh, which honours
// ETCD_VERSION, KUBE_VERSION and TRACE_CAPTURE_CACHE.
package e2e
