// Package probe gets full kube-apiserver → etcd traces on demand from a
// cluster whose components trace at sampling rate 0, without restarting
// anything.
//
// Since Kubernetes 1.33 kube-apiserver continues an incoming sampled W3C
// traceparent from users in system:masters or system:monitoring, and etcd
// follows a sampled parent even at rate 0. Run checks that this holds (the
// apiserver's version, the caller's groups), sends a mix of requests that
// each carry a sampled traceparent of a trace id it made up, records what
// the components export on a local OTLP receiver, and writes a bundle whose
// probe/requests.json lists the probe's requests by trace id.
package probe
