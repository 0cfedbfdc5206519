// Package report renders an analyze.Result: as indented JSON (WriteJSON),
// the content of report.json, and as one self-contained HTML page
// (WriteHTML) that opens offline from a bug attachment.
//
// The package only renders. Everything it shows comes from the Result; the
// "generated at" time and the tool version come in through HTMLOptions, so
// the output is a deterministic function of its inputs and golden files can
// pin it byte for byte.
//
// The HTML page is a single html/template (parsed once from embedded assets)
// with its CSS, JavaScript and SVG inline: no CDN, no fonts, no network. All
// span data is untrusted and reaches the page only through html/template's
// contextual escaping: as text and attributes in the server-rendered tables,
// graph and waterfalls, and as JSON inside a <script type="application/json">
// block that the page's script reads with JSON.parse and writes into the DOM
// with textContent only. Per-trace detail is capped (HTMLOptions), so a huge
// capture still gives a small page; the full tables stay in report.json.
package report
