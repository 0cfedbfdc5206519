//go:build !linux

package analyze

func mapRegion(size int) []byte { return nil }

func unmapRegion(b []byte) {}
