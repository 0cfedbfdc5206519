package archive

import (
	"errors"
	"fmt"
)

// Magic starts every span archive.
const Magic = "TCSPANS\x00"

// Version is the format version this package writes. Readers accept it and
// every older version.
const Version = 1

// compressionZstd is the only compression id of format version 1.
const compressionZstd = 1

// headerSize is len(Magic) + a version byte + a compression byte + a
// reserved byte.
const headerSize = len(Magic) + 3

// DefaultMaxRecordSize bounds one record unless a reader or writer is told
// otherwise: well above gRPC's default 4 MiB message limit.
const DefaultMaxRecordSize = 64 << 20

// FileExtension is the conventional name ending of a span archive.
const FileExtension = ".tcspans"

var (
	// ErrTruncated reports an archive that ends without its end marker: the
	// writer was killed, or the file was cut. Every record returned before
	// it is complete and intact.
	ErrTruncated = errors.New("span archive is truncated")

	// ErrNotArchive reports a file that does not start with Magic.
	ErrNotArchive = errors.New("not a trace-capture span archive")

	// ErrRecordTooLarge reports a record above the configured maximum size.
	ErrRecordTooLarge = errors.New("record too large")

	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("span archive writer is closed")
)

// UnsupportedVersionError reports an archive written by a newer format.
type UnsupportedVersionError struct {
	Version     byte
	Compression byte
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("span archive format version %d with compression %d is not supported (this build reads version %d)", e.Version, e.Compression, Version)
}

func header() []byte {
	h := make([]byte, 0, headerSize)
	h = append(h, Magic...)
	return append(h, Version, compressionZstd, 0)
}
