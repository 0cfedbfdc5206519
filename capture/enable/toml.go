package enable

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A small, line-preserving TOML reader and editor: enough to read and set scalar keys in
// containerd's and CRI-O's configuration files without reformatting the rest. It understands
// tables, arrays of tables, dotted and quoted keys, comments, multi-line strings and arrays; it
// does not evaluate values other than bools, integers, floats and strings.

type tomlItemKind int

const (
	tomlTable tomlItemKind = iota + 1
	tomlArrayTable
	tomlKeyValue
)

// tomlItem is a table header or a key/value pair; start and end delimit its lines.
type tomlItem struct {
	kind  tomlItemKind
	table []string // for headers: the table; for key/values: the enclosing table
	key   []string // for key/values: the (dotted) key
	raw   string   // for key/values: the raw value (comments stripped; multi-line values joined)
	start int      // first line index
	end   int      // one past the last line index
}

func (it tomlItem) path() []string {
	return append(append([]string(nil), it.table...), it.key...)
}

type tomlDoc struct {
	lines []string // each with its line ending
	items []tomlItem
}

const maxTOMLSize = 4 << 20

func parseTOML(data []byte) (*tomlDoc, error) {
	if len(data) > maxTOMLSize {
		return nil, fmt.Errorf("parse TOML: larger than %d bytes", maxTOMLSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("parse TOML: not valid UTF-8")
	}
	d := &tomlDoc{lines: strings.SplitAfter(string(data), "\n")}
	if n := len(d.lines); n > 0 && d.lines[n-1] == "" {
		d.lines = d.lines[:n-1]
	}
	var table []string
	for i := 0; i < len(d.lines); i++ {
		line := strings.TrimRight(d.lines[i], "\r\n")
		s := strings.TrimLeft(line, " \t")
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '[' {
			kind := tomlTable
			inner := s[1:]
			if strings.HasPrefix(s, "[[") {
				kind, inner = tomlArrayTable, s[2:]
			}
			key, rest, err := parseTOMLKey(inner)
			if err != nil {
				return nil, fmt.Errorf("parse TOML line %d: %w", i+1, err)
			}
			closing := "]"
			if kind == tomlArrayTable {
				closing = "]]"
			}
			if !strings.HasPrefix(rest, closing) {
				return nil, fmt.Errorf("parse TOML line %d: unterminated table header", i+1)
			}
			if tail := strings.TrimLeft(rest[len(closing):], " \t"); tail != "" && tail[0] != '#' {
				return nil, fmt.Errorf("parse TOML line %d: text after table header", i+1)
			}
			table = key
			d.items = append(d.items, tomlItem{kind: kind, table: key, start: i, end: i + 1})
			continue
		}
		key, rest, err := parseTOMLKey(s)
		if err != nil {
			return nil, fmt.Errorf("parse TOML line %d: %w", i+1, err)
		}
		if !strings.HasPrefix(rest, "=") {
			return nil, fmt.Errorf("parse TOML line %d: expected '=' after key", i+1)
		}
		val := strings.TrimLeft(rest[1:], " \t")
		raw, end, err := d.scanValue(val, i)
		if err != nil {
			return nil, fmt.Errorf("parse TOML line %d: %w", i+1, err)
		}
		if raw == "" {
			return nil, fmt.Errorf("parse TOML line %d: missing value", i+1)
		}
		d.items = append(d.items, tomlItem{kind: tomlKeyValue, table: table, key: key, raw: raw, start: i, end: end})
		i = end - 1
	}
	return d, nil
}

// parseTOMLKey parses a (dotted) key at the start of s and returns it and the rest (trimmed).
func parseTOMLKey(s string) ([]string, string, error) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", errors.New("missing key")
		}
		var part string
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", errors.New("unterminated quoted key")
			}
			v, err := tomlBasicString(s[:end+1])
			if err != nil {
				return nil, "", err
			}
			part, s = v, s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", errors.New("unterminated quoted key")
			}
			part, s = s[1:end+1], s[end+2:]
		default:
			end := 0
			for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z' || s[end] >= '0' && s[end] <= '9' || s[end] == '_' || s[end] == '-') {
				end++
			}
			if end == 0 {
				return nil, "", fmt.Errorf("invalid key character %q", s[0])
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return parts, s, nil
		}
		s = s[1:]
	}
}

// scanValue reads the value that starts with v on line i, following multi-line strings and
// arrays onto later lines. It returns the raw value without comments and the end line index.
func (d *tomlDoc) scanValue(v string, i int) (string, int, error) {
	var raw strings.Builder
	depth := 0    // [ and { nesting
	inMulti := "" // `"""` or `'''` while inside a multi-line string
	line := v
	for {
		j := 0
		for j < len(line) {
			c := line[j]
			if inMulti != "" {
				if strings.HasPrefix(line[j:], inMulti) {
					// A closing delimiter may be followed by up to two more quotes.
					k := j + 3
					for n := 0; n < 2 && k < len(line) && line[k] == inMulti[0]; n++ {
						k++
					}
					raw.WriteString(line[j:k])
					j = k
					inMulti = ""
					continue
				}
				if inMulti == `"""` && c == '\\' && j+1 < len(line) {
					raw.WriteString(line[j : j+2])
					j += 2
					continue
				}
				raw.WriteByte(c)
				j++
				continue
			}
			switch {
			case c == '#':
				j = len(line)
				continue
			case strings.HasPrefix(line[j:], `"""`) || strings.HasPrefix(line[j:], `'''`):
				inMulti = line[j : j+3]
				raw.WriteString(inMulti)
				j += 3
				continue
			case c == '"':
				k := j + 1
				for k < len(line) && line[k] != '"' {
					if line[k] == '\\' {
						k++
					}
					k++
				}
				if k >= len(line) {
					return "", 0, errors.New("unterminated string")
				}
				raw.WriteString(line[j : k+1])
				j = k + 1
				continue
			case c == '\'':
				k := strings.IndexByte(line[j+1:], '\'')
				if k < 0 {
					return "", 0, errors.New("unterminated string")
				}
				raw.WriteString(line[j : j+k+2])
				j += k + 2
				continue
			case c == '[' || c == '{':
				depth++
			case c == ']' || c == '}':
				depth--
				if depth < 0 {
					return "", 0, errors.New("unbalanced brackets")
				}
			}
			raw.WriteByte(c)
			j++
		}
		if depth == 0 && inMulti == "" {
			return strings.TrimSpace(raw.String()), i + 1, nil
		}
		i++
		if i >= len(d.lines) {
			return "", 0, errors.New("value not terminated at end of file")
		}
		raw.WriteByte('\n')
		line = strings.TrimRight(d.lines[i], "\r\n")
	}
}

func pathEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasPrefix(p, prefix []string) bool {
	return len(p) >= len(prefix) && pathEqual(p[:len(prefix)], prefix)
}

// lookup returns the key/value item at the full path, or nil.
func (d *tomlDoc) lookup(path ...string) *tomlItem {
	for i := range d.items {
		it := &d.items[i]
		if it.kind == tomlKeyValue && pathEqual(it.path(), path) {
			return it
		}
	}
	return nil
}

// tomlKV is a key and its raw TOML value.
type tomlKV struct {
	key string
	raw string
}

// set sets scalar keys in table, editing lines in place: an existing key's line is replaced, a
// missing key is added after the table's last key, and a missing table is appended at the end.
func (d *tomlDoc) set(table []string, kvs []tomlKV) error {
	// Refuse layouts where the table is given as a value (inline table) or an array of tables.
	for _, it := range d.items {
		p := it.path()
		if it.kind == tomlKeyValue && hasPrefix(table, p) {
			return fmt.Errorf("%w: %s is set as a value on line %d; edit it by hand", ErrUnsupported, tomlPath(p), it.start+1)
		}
		if it.kind == tomlArrayTable && hasPrefix(table, it.table) {
			return fmt.Errorf("%w: %s is an array of tables", ErrUnsupported, tomlPath(it.table))
		}
	}
	var missing []tomlKV
	for _, kv := range kvs {
		it := d.lookup(append(append([]string(nil), table...), kv.key)...)
		if it == nil {
			missing = append(missing, kv)
			continue
		}
		first := d.lines[it.start]
		indent := first[:len(first)-len(strings.TrimLeft(first, " \t"))]
		body := first[len(indent):]
		_, rest, err := parseTOMLKey(body)
		if err != nil {
			return err
		}
		keyText := strings.TrimRight(body[:len(body)-len(rest)], " \t")
		d.lines[it.start] = indent + keyText + " = " + kv.raw + lineEnding(d.lines[it.end-1])
		for j := it.start + 1; j < it.end; j++ {
			d.lines[j] = ""
		}
	}
	if len(missing) == 0 {
		return nil
	}
	header := -1
	for i, it := range d.items {
		if it.kind == tomlTable && pathEqual(it.table, table) {
			header = i
		}
	}
	if header < 0 {
		var b strings.Builder
		if n := len(d.lines); n > 0 {
			if !strings.HasSuffix(d.lines[n-1], "\n") {
				b.WriteString("\n")
			}
			if strings.TrimSpace(d.lines[n-1]) != "" {
				b.WriteString("\n")
			}
		}
		b.WriteString("[" + tomlPath(table) + "]\n")
		for _, kv := range missing {
			b.WriteString("  " + kv.key + " = " + kv.raw + "\n")
		}
		d.lines = append(d.lines, b.String())
		return nil
	}
	// Insert after the last key of the table (before the next header).
	h := d.items[header]
	at := h.end
	indent := ""
	hl := d.lines[h.start]
	headerIndent := hl[:len(hl)-len(strings.TrimLeft(hl, " \t"))]
	indent = headerIndent + "  "
	for _, it := range d.items[header+1:] {
		if it.kind != tomlKeyValue {
			break
		}
		if at == h.end {
			l := d.lines[it.start]
			indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		}
		at = it.end
	}
	var b strings.Builder
	if at > 0 && !strings.HasSuffix(d.lines[at-1], "\n") {
		d.lines[at-1] += "\n"
	}
	for _, kv := range missing {
		b.WriteString(indent + kv.key + " = " + kv.raw + "\n")
	}
	if at < len(d.lines) {
		d.lines[at] = b.String() + d.lines[at]
	} else {
		d.lines = append(d.lines, b.String())
	}
	return nil
}

func lineEnding(l string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return ""
}

func (d *tomlDoc) bytes() []byte {
	var b strings.Builder
	for _, l := range d.lines {
		b.WriteString(l)
	}
	return []byte(b.String())
}

// tomlPath writes a table path, quoting parts that are not bare keys.
func tomlPath(p []string) string {
	parts := make([]string, len(p))
	for i, s := range p {
		bare := s != ""
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				bare = false
				break
			}
		}
		if bare {
			parts[i] = s
		} else {
			parts[i] = tomlQuote(s)
		}
	}
	return strings.Join(parts, ".")
}

// tomlQuote returns s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlBasicString decodes a one-line TOML string ("..." or '...').
func tomlBasicString(raw string) (string, error) {
	if len(raw) >= 2 && raw[0] == '\'' && raw[len(raw)-1] == '\'' {
		return raw[1 : len(raw)-1], nil
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", fmt.Errorf("not a string: %s", truncate(raw, 40))
	}
	in := raw[1 : len(raw)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(in) {
			return "", errors.New("bad escape")
		}
		switch in[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case '"', '\\':
			b.WriteByte(in[i])
		case 'u', 'U':
			n := 4
			if in[i] == 'U' {
				n = 8
			}
			if i+1+n > len(in) {
				return "", errors.New("bad escape")
			}
			r, err := strconv.ParseUint(in[i+1:i+1+n], 16, 32)
			if err != nil || !utf8.ValidRune(rune(r)) {
				return "", errors.New("bad escape")
			}
			b.WriteRune(rune(r))
			i += n
		default:
			return "", errors.New("bad escape")
		}
	}
	return b.String(), nil
}

// tomlStringValue decodes a raw string value (one-line forms only).
func tomlStringValue(raw string) (string, bool) {
	s, err := tomlBasicString(raw)
	return s, err == nil
}

// tomlBoolValue decodes a raw bool value.
func tomlBoolValue(raw string) (bool, bool) {
	switch raw {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// tomlIntValue decodes a raw decimal integer value.
func tomlIntValue(raw string) (int64, bool) {
	n, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, 64)
	return n, err == nil
}
