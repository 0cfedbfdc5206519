package redact

import "testing"

// Hooks for the external tests (package redact_test).

// TestCases are the captures the bundle tests redact.
var TestCases = testCases

// TestKey is the fixed key of the tests.
var TestKey = testKey

// RedactCase builds the input bundle of tc in dir and redacts it.
func RedactCase(t *testing.T, tc testCase, dir string, key []byte) (in, out, mapping string, rep Report) {
	return redactCase(t, tc, dir, key)
}
