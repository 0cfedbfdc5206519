package analyze

import (
	"cmp"
	"fmt"
	"slices"
)

const (
	sevWarning = "warning"
	sevInfo    = "info"
)

// buildWarnings is the capture-quality pass: it turns every count of
// dropped, relinked or suspicious data into a warning.
//
// Invariant: every span that was not analyzed as read (invalid, duplicate,
// orphan, relinked, clamped, long-lived) is covered by some warning's
// count; warnings are sorted by severity, then code.
func buildWarnings(opts *Options, r *Result, st *store, asm *assembly, sk *skewResult, tw *traceWork,
	ag *aggregator, in *inputStats, truncated []string) []Warning {
	var w []Warning
	add := func(code, sev string, count int64, format string, args ...any) {
		w = append(w, Warning{Code: code, Severity: sev, Count: count, Message: fmt.Sprintf(format, args...)})
	}
	opLabel := func(op int32) string {
		o := &ag.ops[op]
		return st.strs[o.svc] + ": " + st.strs[o.name]
	}

	if in.bad > 0 {
		add(WarnBadRecords, sevWarning, in.bad,
			"%d of %d records could not be decoded completely; the spans decoded before each fault were kept.", in.bad, in.records)
	}
	if in.srcErr != nil {
		add(WarnInputError, sevWarning, 0, "Reading the input stopped early: %v. The report covers the %d records read before that.",
			in.srcErr, in.records)
	}
	if asm.spans == 0 {
		add(WarnNoSpans, sevWarning, 0, "The input holds no valid span: there is nothing to analyze.")
	}
	if n := in.decode.invalidSpans + asm.cycles; n > 0 {
		add(WarnInvalidSpans, sevWarning, n,
			"%d spans without a valid trace id or span id were dropped; %d parent links that formed cycles were cut.",
			in.decode.invalidSpans, asm.cycles)
	}
	if n := in.decode.badTimes; n > 0 {
		add(WarnInvalidTimes, sevWarning, n, "%d spans have no start time or end before they start; their duration is taken as 0.", n)
	}
	if asm.dups > 0 {
		add(WarnDuplicateSpans, sevInfo, asm.dups,
			"%d spans were received more than once (same trace and span id) and counted once (the last copy is kept).", asm.dups)
	}
	if asm.conflicts > 0 {
		add(WarnConflictingSpans, sevWarning, asm.conflicts,
			"%d duplicate span ids carried different content; the last copy read was kept.", asm.conflicts)
	}
	if asm.orphans > 0 {
		add(WarnOrphanSpans, sevWarning, asm.orphans,
			"%d spans name a parent span that is not in the capture; they are analyzed as roots. Most: %s.",
			asm.orphans, topList(ag.orphanOps, opLabel, 3))
	}
	// Propagation stops at a component boundary: CLIENT spans without a
	// SERVER child although the server side is traced (some calls of the
	// same operation have one, or the capture holds SERVER spans of that
	// name in another service).
	broken := map[int32]int64{}
	var brokenTotal int64
	for i := range ag.ops {
		o := &ag.ops[i]
		if o.kind != kindClient {
			continue
		}
		missing := o.clientCalls - o.clientServed - o.clientLong
		if missing <= 0 {
			continue
		}
		expected := o.clientServed > 0
		if s, ok := ag.servers[o.name]; ok && s != o.svc {
			expected = true
		}
		if expected {
			broken[int32(i)] = missing
			brokenTotal += missing
		}
	}
	if brokenTotal > 0 {
		add(WarnBrokenPropagation, sevWarning, brokenTotal,
			"%d client calls have no server span although the server side sent spans (sampling, a dropped export, or context not propagated). Most: %s.",
			brokenTotal, topList(broken, opLabel, 3))
	}
	for _, s := range r.Sources {
		if s.SentNothing {
			add(WarnSourceSilent, sevWarning, 0, "Source %s sent no span (expected service %v).%s", s.Name, s.Services, noteSuffix(s.Note))
		}
		var d int64
		for _, n := range s.Dropped {
			d += n
		}
		if d > 0 {
			add(WarnDroppedSpans, sevWarning, d, "%d spans of source %s were dropped before reaching the archive: %s.",
				d, s.Name, topList(s.Dropped, func(k string) string { return k }, 5))
		}
	}
	var od int64
	for _, n := range opts.Dropped {
		od += n
	}
	if od > 0 {
		add(WarnDroppedSpans, sevWarning, od, "%d spans were dropped by the receiver: %s.", od,
			topList(opts.Dropped, func(k string) string { return k }, 5))
	}
	if sk.moved > 0 {
		add(WarnClockSkew, sevInfo, int64(sk.moved),
			"Clocks of %d hosts were adjusted so server spans lie inside their client spans (see clock_skew).", sk.moved)
	}
	if sk.capped > 0 {
		add(WarnClockSkewCapped, sevWarning, int64(sk.capped),
			"The estimated clock offset of %d hosts exceeds the cap and was only partly applied; cross-host timings there are unreliable.", sk.capped)
	}
	if ag.longTr > 0 {
		add(WarnLongLived, sevInfo, ag.longTr,
			"%d traces are long-lived (watches, streams: %d spans); their durations are not latencies, so they are kept out of the slowest traces, slow paths and latency percentiles (see long_lived).",
			ag.longTr, ag.longSpans)
	}
	if ag.linked > 0 {
		add(WarnUntrustedLinks, sevInfo, ag.linked,
			"%d spans carry span links instead of a parent: the kube-apiserver starts a new trace for a traceparent sent by a client outside system:masters/system:monitoring, so the caller's trace is not joined.", ag.linked)
	}
	if ag.loneAuth > 0 {
		add(WarnLoneAuthentication, sevInfo, ag.loneAuth,
			"%d traces are a lone kube-apiserver authentication span: the request's SERVER span continued the caller's trace (or started its own), leaving this span behind. %d of them were matched by time to their request and are not ranked on their own.",
			ag.loneAuth, ag.joinedAuth)
	}
	if ag.overflowing > 0 {
		add(WarnOverflowingSpans, sevInfo, ag.overflowing,
			"%d spans start before or end after their parent (after clock adjustment); they are truncated to the parent for the critical path.", ag.overflowing)
	}
	if sv := ag.svcs[st.unknownService]; sv != nil {
		add(WarnUnknownServiceName, sevWarning, sv.spans, "%d spans come from a resource without service.name.", sv.spans)
	}
	for _, t := range truncated {
		add(WarnTruncatedTables, sevInfo, 0, "Table cut to its size limit: %s.", t)
	}
	slices.SortStableFunc(w, func(a, b Warning) int {
		if a.Severity != b.Severity {
			if a.Severity == sevWarning {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Code, b.Code)
	})
	if w == nil {
		w = []Warning{}
	}
	return w
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " " + n
}
