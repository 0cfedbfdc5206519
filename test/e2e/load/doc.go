// Package load drives a short, realistic API load against a kube-apiserver
// with client-go, so that a trace capture has the request shapes a real
// cluster shows: creates, gets, updates, merge patches, lists (one of them
// large), watches open while objects change, a 409 conflict and a 404,
// deletes, a deletecollection, and requests that carry a client's sampled
// W3C traceparent with known trace ids.
//
// Run is bounded in time: the fixed phases run first, a steady trickle of
// controller-like requests fills the rest of Options.Duration, and the
// deletes end the run. It returns counts of what it did, so a test can
// compare them with the spans it received.
package load
