// Package capture produces bundles: from a local OTLP receiver (Record),
// from other tools' trace files (Import), and from a cluster whose
// components it switches tracing on in for a window and restores. It also
// turns bundles back into other tools' formats (Export).
package capture
