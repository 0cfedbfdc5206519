package enable

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseCmdline splits the contents of /proc/PID/cmdline (NUL-separated, usually NUL-terminated)
// into arguments.
func ParseCmdline(b []byte) []string {
	return splitNUL(b)
}

// ParseEnviron splits the contents of /proc/PID/environ into "KEY=VALUE" strings.
func ParseEnviron(b []byte) []string {
	return splitNUL(b)
}

func splitNUL(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// flagName returns the name of the flag in arg ("--name=value", "--name", "-name") and its
// inline value; ok is false for positional arguments, "-" and "--".
func flagName(arg string) (name, value string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", "", false, false
	}
	s := arg[1:]
	if s[0] == '-' {
		s = s[1:]
	}
	if s == "" || s[0] == '-' || s[0] == '=' {
		return "", "", false, false
	}
	if i := strings.IndexByte(s, '='); i >= 0 {
		return s[:i], s[i+1:], true, true
	}
	return s, "", false, true
}

// flagOccurrence is one occurrence of a flag in an argument list.
type flagOccurrence struct {
	index    int    // index of the flag argument
	n        int    // number of arguments it spans (1, or 2 for "--name value")
	value    string // its value ("" for a bool flag without value)
	hasValue bool
}

// findFlag returns every occurrence of the flag name in args (program name excluded by the
// caller). For a flag that takes a value, "--name value" (the next argument) is accepted as Go's
// flag package and pflag both do; for a bool flag only "--name" and "--name=value" are. Scanning
// stops at "--".
func findFlag(args []string, name string, isBool bool) []flagOccurrence {
	var occ []flagOccurrence
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		n, v, hasV, ok := flagName(args[i])
		if !ok || n != name {
			continue
		}
		switch {
		case hasV:
			occ = append(occ, flagOccurrence{index: i, n: 1, value: v, hasValue: true})
		case isBool:
			occ = append(occ, flagOccurrence{index: i, n: 1})
		case i+1 < len(args):
			occ = append(occ, flagOccurrence{index: i, n: 2, value: args[i+1], hasValue: true})
			i++
		default:
			occ = append(occ, flagOccurrence{index: i, n: 1})
		}
	}
	return occ
}

// FlagValue returns the value of the flag name (without dashes) that takes a value, accepting
// "--name=value", "--name value", "-name=value" and "-name value". When the flag is repeated the
// last occurrence wins, as in Go's flag package and pflag. ok is false when the flag is absent.
func FlagValue(args []string, name string) (value string, ok bool) {
	occ := findFlag(args, name, false)
	if len(occ) == 0 {
		return "", false
	}
	last := occ[len(occ)-1]
	return last.value, last.hasValue
}

// BoolFlag returns the value of the bool flag name: true for "--name", the parsed value for
// "--name=value". ok is false when the flag is absent; err reports an unparsable value.
func BoolFlag(args []string, name string) (value, ok bool, err error) {
	occ := findFlag(args, name, true)
	if len(occ) == 0 {
		return false, false, nil
	}
	last := occ[len(occ)-1]
	if !last.hasValue {
		return true, true, nil
	}
	b, err := strconv.ParseBool(last.value)
	if err != nil {
		return false, true, fmt.Errorf("flag --%s: invalid bool %q", name, last.value)
	}
	return b, true, nil
}

// flagSpec is a flag to set: its name, whether it is a bool flag, and its value.
type flagSpec struct {
	name   string
	isBool bool
	value  string
}

func (f flagSpec) arg() string { return "--" + f.name + "=" + f.value }

// splitProgram separates a leading program name (an argument that does not start with "-") from
// the flags.
func splitProgram(args []string) (prog []string, flags []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[:1], args[1:]
	}
	return nil, args
}

// setFlags returns a copy of args (without program name) in which every flag in set has exactly
// one occurrence, "--name=value": the first existing occurrence is replaced in place, later ones
// are removed, and missing flags are appended (before a "--" terminator, if any). Every flag named
// in remove is removed. isBool tells, for removed flags, whether they are bool flags.
func setFlags(args []string, set []flagSpec, remove map[string]bool) []string {
	type edit struct {
		n    int
		repl []string
	}
	edits := map[int]edit{}
	for _, f := range set {
		occ := findFlag(args, f.name, f.isBool)
		for j, o := range occ {
			if j == 0 {
				edits[o.index] = edit{n: o.n, repl: []string{f.arg()}}
			} else {
				edits[o.index] = edit{n: o.n}
			}
		}
	}
	for name, isBool := range remove {
		for _, o := range findFlag(args, name, isBool) {
			edits[o.index] = edit{n: o.n}
		}
	}
	out := make([]string, 0, len(args)+len(set))
	end := len(args)
	for i, a := range args {
		if a == "--" {
			end = i
			break
		}
	}
	for i := 0; i < end; {
		if e, ok := edits[i]; ok {
			out = append(out, e.repl...)
			i += e.n
			continue
		}
		out = append(out, args[i])
		i++
	}
	for _, f := range set {
		if len(findFlag(args, f.name, f.isBool)) == 0 {
			out = append(out, f.arg())
		}
	}
	return append(out, args[end:]...)
}

// mergeFeatureGate sets gate=value in a --feature-gates value ("A=true,B=false").
func mergeFeatureGate(gates, gate string, value bool) string {
	var parts []string
	found := false
	for _, p := range strings.Split(gates, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		if strings.TrimSpace(k) == gate {
			if !found {
				parts = append(parts, gate+"="+strconv.FormatBool(value))
				found = true
			}
			continue
		}
		parts = append(parts, p)
	}
	if !found {
		parts = append(parts, gate+"="+strconv.FormatBool(value))
	}
	return strings.Join(parts, ",")
}

// envValue returns the value of key in a "KEY=VALUE" list; the last occurrence wins.
func envValue(env []string, key string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}
