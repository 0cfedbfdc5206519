package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MappingSchemaVersion is the version of the mapping file.
const MappingSchemaVersion = 1

// Mapping is the list of tokens and the values they replaced: the only
// record of the originals. It stays with the user and never goes into a
// bundle.
type Mapping struct {
	SchemaVersion  int            `json:"schema_version"`
	KeyFingerprint string         `json:"key_fingerprint"`
	Entries        []MappingEntry `json:"entries"`
}

// Mapping returns the tokens issued so far (with those of a mapping file
// read by Bundle), sorted by token.
func (w *RecordRewriter) Mapping() *Mapping {
	entries := w.e.tok.entries()
	w.mu.Lock()
	pre := w.preloaded
	w.mu.Unlock()
	return &Mapping{SchemaVersion: MappingSchemaVersion, KeyFingerprint: w.keyFP, Entries: mergeEntries(pre, entries)}
}

func mergeEntries(a, b []MappingEntry) []MappingEntry {
	seen := map[MappingEntry]bool{}
	var out []MappingEntry
	for _, l := range [][]MappingEntry{a, b} {
		for _, e := range l {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Token != out[j].Token {
			return out[i].Token < out[j].Token
		}
		return out[i].Original < out[j].Original
	})
	return out
}

// ReadMapping reads a mapping file.
func ReadMapping(path string) (*Mapping, error) {
	b, err := readSmallFile(path, 1<<30)
	if err != nil {
		return nil, fmt.Errorf("read redaction mapping: %w", err)
	}
	var m Mapping
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read redaction mapping %s: %w", path, err)
	}
	if m.SchemaVersion < 1 || m.SchemaVersion > MappingSchemaVersion {
		return nil, fmt.Errorf("read redaction mapping %s: schema version %d is not %d", path, m.SchemaVersion, MappingSchemaVersion)
	}
	return &m, nil
}

// UseMapping checks that the mapping file at path, if there is one, was
// written with this rewriter's key, and takes its entries in: they are
// kept when the mapping is written again, and a value that has a token
// there gets the same token here even after a hash collision. A missing
// file is not an error.
func (w *RecordRewriter) UseMapping(path string) error {
	m, err := ReadMapping(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.KeyFingerprint != w.keyFP {
		return fmt.Errorf("redaction mapping %s was written with another key (fingerprint %s, this key %s): pass the key that wrote it, or choose another mapping file",
			path, m.KeyFingerprint, w.keyFP)
	}
	t := w.e.tok
	t.mu.Lock()
	for _, e := range m.Entries {
		prefix, core, ok := strings.Cut(e.Token, "-")
		if !ok || kindPrefix[e.Kind] != prefix {
			continue
		}
		t.issued[e.Token] = true // a redacted value met again stays as it is
		if _, taken := t.owner[core]; !taken {
			if _, has := t.core[e.Original]; !has {
				t.core[e.Original], t.owner[core] = core, e.Original
			}
		}
	}
	t.mu.Unlock()
	w.mu.Lock()
	w.preloaded = m.Entries
	w.mu.Unlock()
	return nil
}

// WriteMapping writes the mapping to path, readable by its owner only,
// atomically. An existing mapping file of another key is refused; one of
// the same key is merged.
func (w *RecordRewriter) WriteMapping(path string) (err error) {
	if err := w.UseMapping(path); err != nil {
		return err
	}
	b, err := json.MarshalIndent(w.Mapping(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode redaction mapping: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write redaction mapping: %w", err)
	}
	return nil
}

func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}
