package report

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"

	"github.com/trace-capture/trace-capture/analyze"
)

var (
	//go:embed assets/report.html.tmpl
	pageTemplate string
	//go:embed assets/report.css
	pageCSS string
	//go:embed assets/report.js
	pageJS string
)

// page is parsed once. The CSS and JS are the package's own constant
// assets, so marking them safe is sound; nothing from a span is ever
// converted to a template.HTML, CSS or JS type.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"css":  func() template.CSS { return template.CSS(pageCSS) },
	"js":   func() template.JS { return template.JS(pageJS) },
	"add":  func(a, b int) int { return a + b },
	"list": func(a ...any) []any { return a },
	"wbr":  wbr,
}).Parse(pageTemplate))

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// JavaScript and SVG, no external resources, usable from file://. The
// output is a deterministic function of r and opts. It returns the first
// error of w, if any.
func WriteHTML(w io.Writer, r *analyze.Result, opts HTMLOptions) error {
	if r == nil {
		return errors.New("write report html: nil result")
	}
	v := buildView(r, opts)
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := page.Execute(bw, v); err != nil {
		return fmt.Errorf("write report html: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report html: %w", err)
	}
	return nil
}
