// trace-capture report behaviour. Progressive enhancement only: every table,
// the graph and the waterfalls are rendered on the server, so the report reads
// fine with scripts off and in print. Span data reaches this script only as
// JSON from the #report-data block, and only through
// textContent: no innerHTML anywhere.
(function () {
  "use strict";
  var root = document.documentElement;
  var errors = 0;
  window.addEventListener("error", function () {
    errors++;
    root.setAttribute("data-errors", String(errors));
  });

  function $all(sel, ctx) { return Array.prototype.slice.call((ctx || document).querySelectorAll(sel)); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  var data = {};
  var dataEl = document.getElementById("report-data");
  if (dataEl) {
    try { data = JSON.parse(dataEl.textContent) || {}; } catch (e) { data = {}; root.setAttribute("data-json-error", "1"); }
  }

  // ---- sortable tables ----------------------------------------------------
  function cellKey(td, type) {
    if (!td) return type === "num" ? -Infinity : "";
    if (type === "num") {
      var v = td.getAttribute("data-v");
      var n = v === null || v === "" ? NaN : Number(v);
      return isNaN(n) ? -Infinity : n;
    }
    var s = td.getAttribute("data-v");
    return (s !== null ? s : td.textContent).trim().toLowerCase();
  }
  function sortTable(table, col, dir) {
    var ths = $all("thead tr:last-child th", table);
    var th = ths[col];
    var type = th.getAttribute("data-sort") || "text";
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.forEach(function (r, i) { r._i = i; });
    rows.sort(function (a, b) {
      var x = cellKey(a.cells[col], type), y = cellKey(b.cells[col], type);
      var c = x < y ? -1 : x > y ? 1 : 0;
      if (dir === "descending") c = -c;
      return c !== 0 ? c : a._i - b._i;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    ths.forEach(function (h) { if (h !== th) h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    applyPaging(table);
  }

  // ---- long tables show their first rows, with a button for the rest -------
  function applyPaging(table) {
    var n = Number(table.getAttribute("data-page") || 0);
    if (!n || !table._pager) return;
    var all = table._expanded || table._filtering;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r, i) {
      r.classList.toggle("paged-out", !all && i >= n);
    });
    var total = table.tBodies[0].rows.length;
    table._pager.textContent = table._expanded ? "Show the first " + n + " rows" : "Show all " + total + " rows";
    table._pager.setAttribute("aria-expanded", table._expanded ? "true" : "false");
    table._pager.parentNode.hidden = !!table._filtering;
  }
  function initPaging(table) {
    var n = Number(table.getAttribute("data-page") || 0);
    if (!n || table.tBodies[0].rows.length <= n) return;
    var bar = el("div", "pager");
    var btn = el("button", "btn");
    btn.type = "button";
    bar.appendChild(btn);
    table.parentNode.insertBefore(bar, table.nextSibling);
    table._pager = btn;
    table._expanded = false;
    btn.addEventListener("click", function () {
      table._expanded = !table._expanded;
      applyPaging(table);
    });
    applyPaging(table);
  }
  function initSortable(table) {
    $all("thead tr:last-child th", table).forEach(function (th, col) {
      var btn = th.querySelector("button.sort");
      if (!btn) return;
      btn.addEventListener("click", function () {
        var cur = th.getAttribute("aria-sort");
        var type = th.getAttribute("data-sort") || "text";
        var dir = cur ? (cur === "ascending" ? "descending" : "ascending") : (type === "num" ? "descending" : "ascending");
        sortTable(table, col, dir);
      });
    });
  }
  $all("table.sortable").forEach(function (t) { initSortable(t); initPaging(t); });

  // ---- table filters ------------------------------------------------------
  $all("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) return;
    var shown = document.querySelector('[data-shown-for="' + table.id + '"]');
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      var n = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var hit = q === "" || r.textContent.toLowerCase().indexOf(q) >= 0;
        r.hidden = !hit;
        if (hit) n++;
      });
      if (shown) shown.textContent = q === "" ? "" : n + " matching";
      table._filtering = q !== "";
      applyPaging(table);
    });
  });

  // ---- waterfalls -----------------------------------------------------------
  function rowsOf(wf) { return $all(".row", wf); }
  function setCollapsed(row, collapsed) {
    row.setAttribute("data-collapsed", collapsed ? "1" : "0");
    var tg = row.querySelector(".tg");
    if (tg && !tg.classList.contains("leaf")) {
      tg.setAttribute("aria-expanded", collapsed ? "false" : "true");
      tg.textContent = collapsed ? "\u25B6" : "\u25BC";
    }
  }
  function refresh(wf) {
    // A row is visible when no ancestor is collapsed (and, in critical-path
    // mode, when it is on the critical path).
    var cpOnly = wf.getAttribute("data-cponly") === "1";
    var rows = rowsOf(wf);
    var byIdx = {};
    rows.forEach(function (r) { byIdx[r.getAttribute("data-i")] = r; });
    rows.forEach(function (r) {
      var hidden = cpOnly && !r.classList.contains("cp");
      var p = r.getAttribute("data-parent");
      while (!hidden && p !== null && p !== "-1" && byIdx[p]) {
        if (byIdx[p].getAttribute("data-collapsed") === "1") hidden = true;
        p = byIdx[p].getAttribute("data-parent");
      }
      r.hidden = hidden;
    });
  }
  function showDetail(trace, row) {
    var panel = trace.querySelector(".detail");
    if (!panel) return;
    $all(".row.sel", trace).forEach(function (r) { r.classList.remove("sel"); });
    row.classList.add("sel");
    var ti = Number(trace.getAttribute("data-trace"));
    var si = Number(row.getAttribute("data-i"));
    var td = (data.traces || [])[ti] || {};
    var sp = (td.spans || [])[si] || {};
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    panel.appendChild(el("h4", null, (sp.service || "") + ": " + (sp.name || "")));
    var dl = el("dl");
    function add(k, v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    add("span id", sp.span_id || "");
    if (sp.kind) add("kind", sp.kind);
    add("start", "+" + (sp.start_ms || 0).toFixed(3) + " ms");
    add("duration", (sp.duration_ms || 0).toFixed(3) + " ms");
    if (sp.self_ms !== undefined) add("self time", sp.self_ms.toFixed(3) + " ms");
    if (sp.cp_ms !== undefined) add("on critical path", sp.cp_ms.toFixed(3) + " ms");
    if (sp.status) add("status", sp.status);
    (sp.attrs || []).forEach(function (kv) { add(kv[0], kv[1]); });
    panel.appendChild(dl);
    panel.hidden = false;
  }
  $all(".trace").forEach(function (trace) {
    var wf = trace.querySelector(".wf");
    if (!wf) return;
    rowsOf(wf).forEach(function (row) {
      var tg = row.querySelector(".tg");
      if (tg && !tg.classList.contains("leaf")) {
        tg.addEventListener("click", function (ev) {
          ev.stopPropagation();
          setCollapsed(row, row.getAttribute("data-collapsed") !== "1");
          refresh(wf);
        });
      }
      row.addEventListener("click", function () { showDetail(trace, row); });
      row.addEventListener("keydown", function (ev) {
        var k = ev.key;
        if (k === "Enter" || k === " ") { ev.preventDefault(); showDetail(trace, row); }
        else if ((k === "ArrowLeft" || k === "ArrowRight") && tg && !tg.classList.contains("leaf")) {
          ev.preventDefault(); setCollapsed(row, k === "ArrowLeft"); refresh(wf);
        } else if (k === "ArrowDown" || k === "ArrowUp") {
          ev.preventDefault();
          var vis = rowsOf(wf).filter(function (r) { return !r.hidden; });
          var i = vis.indexOf(row) + (k === "ArrowDown" ? 1 : -1);
          if (vis[i]) vis[i].focus();
        }
      });
    });
    $all("button[data-act]", trace).forEach(function (b) {
      b.addEventListener("click", function () {
        var act = b.getAttribute("data-act");
        if (act === "expand" || act === "collapse") {
          rowsOf(wf).forEach(function (r) {
            // Collapsing keeps the root open so the trace stays readable.
            setCollapsed(r, act === "collapse" && r.getAttribute("data-parent") !== "-1");
          });
        } else if (act === "cponly") {
          var on = wf.getAttribute("data-cponly") !== "1";
          wf.setAttribute("data-cponly", on ? "1" : "0");
          b.setAttribute("aria-pressed", on ? "true" : "false");
        }
        refresh(wf);
      });
    });
  });

  // ---- self test (file://…/report.html?selftest) ----------------------------
  function selftest() {
    var fails = [];
    var checks = 0;
    function check(ok, what) { checks++; if (!ok) fails.push(what); }
    var summary = data.summary || {};
    check(document.querySelector("header.top h1") !== null, "header");
    var svg = document.querySelector(".graph svg");
    if ((summary.services || 0) > 0) {
      check(svg !== null, "graph svg");
      check(svg !== null && svg.querySelectorAll(".node").length === (data.graph_nodes || 0), "graph node count");
      check(svg !== null && svg.querySelectorAll(".edge").length === (data.graph_edges || 0), "graph edge count");
    }
    (data.tables || []).forEach(function (id) { check(document.getElementById(id) !== null, "table " + id); });
    // Sort the first table that has at least two rows and a numeric column.
    var sorted = false;
    $all("table.sortable").some(function (t) {
      if (t.tBodies[0].rows.length < 2) return false;
      var ths = $all("thead tr:last-child th", t);
      var col = -1;
      ths.forEach(function (h, i) { if (col < 0 && h.getAttribute("data-sort") === "num" && h.querySelector("button.sort")) col = i; });
      if (col < 0) return false;
      var btn = ths[col].querySelector("button.sort");
      function keys() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return cellKey(r.cells[col], "num"); }); }
      function isSorted(k, desc) { for (var i = 1; i < k.length; i++) { if (desc ? k[i - 1] < k[i] : k[i - 1] > k[i]) return false; } return true; }
      var before = ths[col].getAttribute("aria-sort");
      btn.click();
      var d1 = ths[col].getAttribute("aria-sort");
      check(d1 === "ascending" || d1 === "descending", "aria-sort set on " + t.id);
      check(isSorted(keys(), d1 === "descending"), "sorted " + d1 + " " + t.id);
      btn.click();
      var d2 = ths[col].getAttribute("aria-sort");
      check(d2 !== d1 && isSorted(keys(), d2 === "descending"), "re-sorted " + d2 + " " + t.id);
      root.setAttribute("data-sorted-table", t.id + " column " + col + ": " + (before || "unsorted") + ", " + d1 + ", " + d2);
      sorted = true;
      return true;
    });
    check(sorted || $all("table.sortable").every(function (t) { return t.tBodies[0].rows.length < 2; }), "a table sorted");
    // Collapse and expand the first waterfall, and open a span's details.
    var trace = document.querySelector(".trace");
    if ((data.traces || []).length > 0) {
      check(trace !== null, "waterfall present");
      var wf = trace.querySelector(".wf");
      var rows = rowsOf(wf);
      check(rows.length === ((data.traces[0].spans || []).length), "waterfall rows match data");
      var rootRow = rows[0];
      var tg = rootRow.querySelector(".tg");
      if (tg && !tg.classList.contains("leaf")) {
        tg.click();
        check(rows.slice(1).every(function (r) { return r.hidden; }), "collapse hides descendants");
        tg.click();
        check(rows.every(function (r) { return !r.hidden; }), "expand shows all");
      }
      var last = rows[rows.length - 1];
      last.click();
      var panel = trace.querySelector(".detail");
      check(panel !== null && !panel.hidden && panel.textContent.length > 0, "span detail opens");
      check(wf.querySelectorAll(".row.cp").length > 0, "critical path highlighted");
    }
    // A long table shows its first rows and reveals the rest on demand.
    $all("table[data-page]").some(function (t) {
      if (!t._pager) return false;
      var n = Number(t.getAttribute("data-page"));
      function visible() { return Array.prototype.filter.call(t.tBodies[0].rows, function (r) { return !r.classList.contains("paged-out"); }).length; }
      check(visible() === n, "paged table " + t.id + " shows " + n + " rows");
      t._pager.click();
      check(visible() === t.tBodies[0].rows.length, "paged table " + t.id + " shows all rows");
      t._pager.click();
      check(visible() === n, "paged table " + t.id + " folds again");
      return true;
    });
    check(errors === 0, "no script errors");
    root.setAttribute("data-selftest-checks", String(checks));
    root.setAttribute("data-selftest", fails.length === 0 ? "pass" : "fail: " + fails.join("; "));
  }

  root.setAttribute("data-ready", "1");
  if (/[?&]selftest\b/.test(location.search)) selftest();
})();
