package enable

import (
	"fmt"
	"strings"
)

// lineDiff returns a unified diff (3 lines of context) from a to b; a nil a is a new file.
func lineDiff(path string, a, b []byte) string {
	from := "a" + path
	if a == nil {
		from = "/dev/null"
	}
	al, bl := splitLines(a), splitLines(b)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ b%s\n", from, path)
	if len(al)*len(bl) > 4_000_000 {
		fmt.Fprintf(&out, "@@ -1,%d +1,%d @@ (file too large to diff line by line)\n", len(al), len(bl))
		return out.String()
	}
	// ops: ' ' keep, '-' delete, '+' insert, from a longest common subsequence.
	n, m := len(al), len(bl)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		text string
		ai   int // line number in a (1-based) for ' ' and '-'
		bi   int // line number in b for ' ' and '+'
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			ops = append(ops, op{' ', al[i], i + 1, j + 1})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', al[i], i + 1, j + 1})
			i++
		default:
			ops = append(ops, op{'+', bl[j], i + 1, j + 1})
			j++
		}
	}
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-ctx, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// Extend over a run of unchanged lines only if another change follows closely.
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run < len(ops) && run-end <= 2*ctx {
				end = run
				continue
			}
			end = min(end+ctx, len(ops))
			break
		}
		aStart, bStart, aCount, bCount := 0, 0, 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				if aCount == 0 {
					aStart = o.ai
				}
				aCount++
			}
			if o.kind != '-' {
				if bCount == 0 {
					bStart = o.bi
				}
				bCount++
			}
		}
		if aCount == 0 {
			aStart = ops[start].ai - 1
		}
		if bCount == 0 {
			bStart = ops[start].bi - 1
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aStart, aCount, bStart, bCount)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.Split(s, "\n")
}
