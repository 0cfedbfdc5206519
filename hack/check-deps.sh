#!/usr/bin/env bash
# Checks that imports point one way:
#   cli -> capture -> receiver -> receiver/archive
#   report -> analyze -> receiver/archive
# and that nothing outside cmd/ imports cobra, pflag or cmd/. The rules are
# for library code; tests may import more to check results (a redaction
# test analyses its output, for example).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0
bad() { echo "check-deps: $1" >&2; fail=1; }

while read -r pkg imports; do
  pkg=${pkg%:}
  rel=${pkg#"$mod"}; rel=${rel#/}
  for imp in $imports; do
    irel=${imp#"$mod"/}
    case "$rel" in
      cmd/*) ;;
      *)
        case "$imp" in
          github.com/spf13/cobra*|github.com/spf13/pflag*) bad "$rel imports $imp (cobra lives in cmd/internal/cli only)";;
          "$mod"/cmd/*) bad "$rel imports $imp (nothing imports cmd)";;
        esac;;
    esac
    [ "$imp" = "$irel" ] && internal=0 || internal=1
    case "$rel" in
      receiver/archive|receiver/archive/*)
        case "$imp" in net|net/http|net/*|google.golang.org/grpc*) bad "$rel imports $imp (the archive is a leaf without network code)";; esac
        if [ $internal = 1 ]; then case "$irel" in receiver/archive*) ;; *) bad "$rel imports $irel (receiver/archive is a leaf)";; esac; fi;;
      receiver|receiver/*)
        if [ $internal = 1 ]; then case "$irel" in capture*|analyze*|report*|cmd*) bad "$rel imports $irel (receiver must not import upwards)";; esac; fi;;
      analyze|analyze/*)
        if [ $internal = 1 ]; then case "$irel" in analyze*|receiver/archive*) ;; *) bad "$rel imports $irel (analyze reads archives only)";; esac; fi;;
      report|report/*)
        if [ $internal = 1 ]; then case "$irel" in report*|analyze*|receiver/archive*) ;; *) bad "$rel imports $irel (report only renders analyze results)";; esac; fi;;
      capture|capture/*)
        if [ $internal = 1 ]; then case "$irel" in capture*|receiver*) ;; *) bad "$rel imports $irel (capture builds on receiver only)";; esac; fi;;
    esac
  done
done < <(go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... | grep -v '^'"$mod"'/test/')

# analyze and report must not link the gRPC server, even indirectly.
for p in ./analyze ./report ./receiver/archive/...; do
  if go list -deps "$p" 2>/dev/null | grep -qx 'google.golang.org/grpc'; then
    bad "$p links google.golang.org/grpc"
  fi
done
[ $fail = 0 ] && echo "check-deps: ok"
exit $fail
