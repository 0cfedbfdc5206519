package redact

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
)

// maxJSONFile bounds the JSON files decoded whole; larger ones are
// scrubbed as text.
const maxJSONFile = 256 << 20

// RedactFiles redacts the files of a bundle about to be written and
// returns the list to write instead. Span archives (entries under spans/)
// are taken as already redacted (by Rewrite or Sink): only their entry
// names change. Every other file is scrubbed into dir: JSON value by value
// (each string by the rule of its key), text line by line; a binary file
// is left out. Call RedactManifest afterwards: it renames the manifest's
// archives the same way.
func (w *RecordRewriter) RedactFiles(files []bundle.File, dir string) ([]bundle.File, error) {
	out := make([]bundle.File, 0, len(files))
	for i, f := range files {
		name := w.EntryName(f.Name)
		if strings.HasPrefix(f.Name, bundle.SpansDir) {
			out = append(out, bundle.File{Name: name, Path: f.Path})
			continue
		}
		in, err := os.Open(f.Path)
		if err != nil {
			return nil, fmt.Errorf("redact %s: %w", f.Name, err)
		}
		dst := filepath.Join(dir, fmt.Sprintf("file-%d", i))
		action, err := w.redactFile(in, f.Name, dst, false)
		in.Close()
		if err != nil {
			return nil, err
		}
		w.noteFile(name, action)
		if action != FileDropped {
			out = append(out, bundle.File{Name: name, Path: dst})
		}
	}
	return out, nil
}

func (w *RecordRewriter) noteFile(name, action string) {
	w.mu.Lock()
	w.files = append(w.files, FileReport{Name: name, Action: action})
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].Name < w.files[j].Name })
	w.mu.Unlock()
}

// redactFile writes the redacted content of r (the bundle entry name) to
// dst and says what it did.
// A dry run (dst "") writes nothing and counts nothing: it only learns the
// names the file holds.
func (w *RecordRewriter) redactFile(r io.Reader, name, dst string, dry bool) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(8 << 10)
	if bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(trimPartialRune(head)) {
		return FileDropped, nil
	}
	if dry {
		return w.redactContent(br, name, io.Discard, true)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("redact %s: %w", name, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	action, err := w.redactContent(br, name, bw, false)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("redact %s: %w", name, err)
	}
	return action, nil
}

func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

func (w *RecordRewriter) redactContent(br *bufio.Reader, name string, out io.Writer, dry bool) (string, error) {
	if strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".jsonl") {
		data, err := io.ReadAll(io.LimitReader(br, maxJSONFile+1))
		if err != nil {
			return "", err
		}
		if len(data) <= maxJSONFile {
			if red, err := w.json(data, dry); err == nil {
				_, err := out.Write(red)
				return FileScrubbedJSON, err
			}
		}
		return FileScrubbedText, w.scrubLines(io.MultiReader(bytes.NewReader(data), br), out, dry)
	}
	return FileScrubbedText, w.scrubLines(br, out, dry)
}

func (w *RecordRewriter) scrubLines(r io.Reader, out io.Writer, dry bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	j := w.e.newJob(false)
	j.discard = dry
	defer w.merge(j)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			body := strings.TrimSuffix(line, "\n")
			if _, werr := io.WriteString(out, j.scrub(body)); werr != nil {
				return werr
			}
			if len(body) < len(line) {
				if _, werr := io.WriteString(out, "\n"); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// JSON redacts a JSON document (or a stream of them, such as JSON lines):
// every string value is redacted by the policy rule of its object key
// (strings in arrays take the key of their array), object keys and other
// values are kept. One document is written indented, a stream one compact
// document per line. The document is read twice, so that free text in it
// has the names its structured fields hold replaced whatever their order.
func (w *RecordRewriter) JSON(data []byte) ([]byte, error) {
	if _, err := w.json(data, true); err != nil {
		return nil, err
	}
	return w.json(data, false)
}

func (w *RecordRewriter) json(data []byte, dry bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode JSON: %w", err)
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		return nil, errors.New("decode JSON: no document")
	}
	j := w.e.newJob(false)
	j.discard = dry
	defer w.merge(j)
	for i := range docs {
		docs[i] = j.jsonValue("", docs[i])
	}
	if len(docs) == 1 {
		b, err := json.MarshalIndent(docs[0], "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	var buf bytes.Buffer
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func (j *job) jsonValue(key string, v any) any {
	switch x := v.(type) {
	case string:
		kind := KindScrub
		if key != "" {
			kind = j.e.pol.kindOf(key)
		}
		if kind == KindDrop {
			kind = KindMask
		}
		return j.apply(kind, x)
	case []any:
		for i := range x {
			x[i] = j.jsonValue(key, x[i])
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = j.jsonValue(k, e)
		}
		return x
	}
	return v
}

// RedactManifest redacts a bundle manifest in place: host names of sources
// and archives, archive entry names (as EntryName), notes and the cluster
// facts (as JSON); service names, counts, times and reasons stay. It then
// sets m.Redaction to the report.
func (w *RecordRewriter) RedactManifest(m *bundle.Manifest) error {
	if len(m.Cluster) > 0 {
		red, err := w.JSON(m.Cluster)
		if err != nil {
			return fmt.Errorf("redact the manifest's cluster facts: %w", err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, red); err != nil {
			return fmt.Errorf("redact the manifest's cluster facts: %w", err)
		}
		m.Cluster = compact.Bytes()
	}
	j := w.e.newJob(false)
	for i := range m.Sources {
		m.Sources[i].Host = j.host(m.Sources[i].Host)
	}
	for i := range m.Archives {
		m.Archives[i].Host = j.host(m.Archives[i].Host)
	}
	for i := range m.Notes {
		m.Notes[i] = j.scrub(m.Notes[i])
	}
	w.merge(j)
	for i := range m.Archives {
		m.Archives[i].Path = w.EntryName(m.Archives[i].Path)
	}
	rep, err := json.Marshal(w.Report())
	if err != nil {
		return fmt.Errorf("encode redaction report: %w", err)
	}
	m.Redaction = rep
	return nil
}
