package analyze

import (
	"cmp"
	"slices"
)

// joinTolerance bounds how far apart a lone authentication span and the
// SERVER span it wraps may start, and end.
const joinTolerance = 5_000_000 // 5 ms

// maxJoinCandidates bounds the SERVER spans considered per lone
// authentication span (the first ones starting after it), so hostile input
// cannot make the matching quadratic.
const maxJoinCandidates = 16

// joinLoneAuthentication matches kube-apiserver traces made of a lone
// "authentication" span with the request it authenticated. Since
// Kubernetes 1.33 the authentication filter span starts before the
// request's SERVER span; when the caller sends a traceparent (or the
// apiserver's own loopback client does) the SERVER span continues the
// caller's trace, or starts a new one, and the authentication span is left
// alone in a 1-span trace. It is matched by time to a SERVER span of the
// same resource that is not under an authentication span, starting at most
// joinTolerance after it and ending at most joinTolerance before it; pairs
// are assigned closest first (sum of the start and end differences).
//
// Invariant: a matched span gets flagJoined (its trace is then left out of
// the trace rankings: its request is already there) and, when the request
// is a watch or stream, flagLong. Each SERVER span is matched at most once;
// nothing else changes.
func joinLoneAuthentication(st *store, a *assembly) (joined int64) {
	lone, servers := a.loneAuth, a.authServers
	if len(lone) == 0 || len(servers) == 0 {
		return 0
	}
	byResStart := func(x, y int32) int {
		a, b := st.span(x), st.span(y)
		if c := cmp.Compare(a.res, b.res); c != 0 {
			return c
		}
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	}
	slices.SortFunc(lone, byResStart)
	slices.SortFunc(servers, byResStart)
	// Candidate pairs within the tolerance, assigned greedily from the
	// closest (sum of start and end differences).
	type cand struct {
		cost int64
		l, s int32 // indices into lone, servers
	}
	var cands []cand
	for li, lidx := range lone {
		l := st.span(lidx)
		i, _ := slices.BinarySearchFunc(servers, l, func(x int32, l *span) int {
			s := st.span(x)
			if c := cmp.Compare(s.res, l.res); c != 0 {
				return c
			}
			return cmp.Compare(s.start, l.start)
		})
		for seen := 0; i < len(servers) && seen < maxJoinCandidates; i++ {
			s := st.span(servers[i])
			if s.res != l.res || s.start > l.start+joinTolerance {
				break
			}
			seen++
			if s.end > l.end || s.end < l.end-joinTolerance {
				continue
			}
			cands = append(cands, cand{cost: (s.start - l.start) + (l.end - s.end), l: int32(li), s: int32(i)})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(a.cost, b.cost); c != 0 {
			return c
		}
		if c := cmp.Compare(a.l, b.l); c != 0 {
			return c
		}
		return cmp.Compare(a.s, b.s)
	})
	usedL := make([]bool, len(lone))
	usedS := make([]bool, len(servers))
	for _, c := range cands {
		if usedL[c.l] || usedS[c.s] {
			continue
		}
		usedL[c.l], usedS[c.s] = true, true
		joined++
		l, s := st.span(lone[c.l]), st.span(servers[c.s])
		l.flags |= flagJoined
		if _, long := longLivedName(st.strs[s.name]); long || st.attrInfo[s.attrs].watch {
			l.flags |= flagLong
		}
	}
	return joined
}
