//go:build linux

package analyze

import "syscall"

func mapRegion(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE; harmless when THP is off
	return b
}

func unmapRegion(b []byte) { _ = syscall.Munmap(b) }
