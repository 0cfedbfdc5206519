package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/trace-capture/trace-capture/analyze"
)

// WriteJSON writes r as indented JSON (two spaces, one trailing newline),
// the content of report.json. The output is deterministic: analyze sorts
// every list and encoding/json sorts map keys. Characters significant in
// HTML (<, >, &) are written as \u escapes so the file can be pasted into
// a web page safely.
func WriteJSON(w io.Writer, r *analyze.Result) error {
	if r == nil {
		return errors.New("write report json: nil result")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}
