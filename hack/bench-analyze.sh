#!/usr/bin/env bash
# Benchmark `analyze` against its peers on the same generated capture, in one run.
#
#   hack/bench-analyze.sh [N] [RUNS]        e.g. hack/bench-analyze.sh 1000000 3
#
# Builds the analyze test binary and, when ../shared/bench/analyze-peer exists, its generator,
# the DuckDB peer (cgo; the first build downloads the DuckDB module) and the naive pdata Go peer.
# The peers' generator writes N spans cloned from the real capture as OTLP protobuf frames (and
# JSON lines for DuckDB); every tool then reads that same data RUNS times, interleaved:
#   ours         analyze.Run on the protobuf frames, pinned to one CPU (taskset, GOMAXPROCS=1)
#   ours-archive analyze.Run on the same spans in a zstd span archive (.tcspans), one CPU
#   naive        pdata ProtoUnmarshaler + maps, on the frames (default GOMAXPROCS)
#   duckpeer     DuckDB (both cores) on the JSON lines
# and prints the median wall time, spans/s, peak RSS and the ratios. The edges of ours are
# checked against the naive peer's (exact equality of calls and percentiles).
#
# Env: NO_DUCKDB=1 skips DuckDB (no JSON file, no cgo build); NO_JSON=1 implies it.
# Without ../shared/bench/analyze-peer only ours is timed (our own generator, same algorithm).
# Data: ${TMPDIR:-/tmp}/analyze-peer/ (peers) and ${TMPDIR:-/tmp}/trace-capture-analyze/ (ours).
# Needs Go, python3, /usr/bin/time (Debian package "time"); taskset is used when present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
RUNS=${2:-3}
PEER=${PEER:-$ROOT/../shared/bench/analyze-peer}
WORK=${TMPDIR:-/tmp}/analyze-peer
BIN=$WORK/bin
DATA=$WORK/data
mkdir -p "$BIN" "$DATA"
[[ -n ${NO_JSON:-} ]] && NO_DUCKDB=1
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 0)

echo "== build"
go version
(cd "$ROOT" && go test -c -o "$BIN/analyze.test" ./analyze)
HAVE_PEER=
if [[ -d $PEER/cmd ]]; then
  HAVE_PEER=1
  tools=(gen naive)
  [[ -z ${NO_DUCKDB:-} ]] && tools+=(duckpeer)
  for c in "${tools[@]}"; do (cd "$PEER" && go build -o "$BIN/$c" "./cmd/$c"); done
fi

echo "== data: $N spans"
P=$DATA/spans-$N.otlp.pb
J=$DATA/spans-$N.otlp.jsonl
if [[ -n $HAVE_PEER ]]; then
  CAPTURE=$PEER/../../testdata/real-components/apiserver-etcd.otlp.jsonl.gz
  if [[ ! -s $P || ( -z ${NO_DUCKDB:-} && ! -s $J ) ]]; then
    if [[ -n ${NO_DUCKDB:-} ]]; then "$BIN/gen" -in "$CAPTURE" -n "$N" -proto "$P"
    else "$BIN/gen" -in "$CAPTURE" -n "$N" -json "$J" -proto "$P"; fi
  fi
fi
# Our generator (same algorithm and seed) also writes the span archive; the frames it writes are
# the peers' frames byte for byte when the peers exist.
(cd "$ROOT/analyze" && "$BIN/analyze.test" -test.run '^TestAnalyzeFile$' -analyze.gen "$N" -test.v >/dev/null)
OURS_DIR=${TMPDIR:-/tmp}/trace-capture-analyze
A=$OURS_DIR/spans-$N.tcspans
[[ -z $HAVE_PEER ]] && P=$OURS_DIR/spans-$N.otlp.pb
if [[ -n $HAVE_PEER ]] && ! cmp -s "$P" "$OURS_DIR/spans-$N.otlp.pb"; then
  echo "note: our generated frames differ from the peers' generator output (timing still uses the peers' file)"
fi
for f in "$P" "$A" "$J"; do [[ -s $f ]] && ls -l "$f"; done

echo "== time ($RUNS runs each, interleaved; files are in the page cache after the first read)"
LOG=$WORK/bench-analyze-$N.txt
: > "$LOG"
run() { # run NAME CMD...: one timed run, appends "NAME wall=.. rss_kb=.." to $LOG
  local name=$1; shift
  /usr/bin/time -v "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || { cat "$WORK/err.txt" >&2; return 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/err.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/err.txt")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$WORK/err.txt")
  echo "$name wall=$wall cpu=$cpu rss_kb=$rss" | tee -a "$LOG"
}
ours() { # ours FILE JSONOUT
  (cd "$ROOT/analyze" && run "$3" env GOMAXPROCS=1 "${PIN[@]}" "$BIN/analyze.test" -test.run '^TestAnalyzeFile$' \
    -analyze.file "$1" -analyze.json "$2" -test.v)
  grep '^analyze: file' "$WORK/out.txt" | sed 's/^/    /'
}
for i in $(seq "$RUNS"); do
  ours "$P" "$DATA/ours-$N.json" ours
  ours "$A" "$DATA/ours-archive-$N.json" ours-archive
  if [[ -n $HAVE_PEER ]]; then
    run naive "$BIN/naive" -json "$P"; cp "$WORK/out.txt" "$DATA/naive-$N.json"
    if [[ -z ${NO_DUCKDB:-} ]]; then run duckpeer "$BIN/duckpeer" -json "$J"; fi
  fi
done

if [[ -n $HAVE_PEER ]]; then
  echo "== check: our edges against the naive peer's"
  python3 - "$DATA/ours-$N.json" "$DATA/naive-$N.json" <<'EOF'
import json, sys
ours, naive = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
oe = {(e["client_service"], e["server_service"]): e for e in ours["edges"]}
ok = ours["summary"]["spans"] == naive["spans"] and ours["summary"]["traces"] == naive["traces"]
for e in naive["edges"]:
    o = oe.get((e["client_service"], e["server_service"]))
    same = o is not None and o["calls"] == e["calls"] and all(
        o[k][q] == e[k][q] for k in ("client_ms", "server_ms") for q in ("p50", "p90", "p99", "max"))
    print(("MATCH " if same else "DIFF  ") + f'{e["client_service"]}->{e["server_service"]} calls={e["calls"]}')
    ok = ok and same
sys.exit(0 if ok else 1)
EOF
fi

echo "== medians over $RUNS runs ($N spans)"
python3 - "$LOG" "$N" <<'EOF'
import re, statistics, sys
rows, n = {}, int(sys.argv[2])
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    rows.setdefault(name, []).append({k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", rest)})
med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rows.items()}
print(f'{"tool":14} {"wall s":>8} {"cpu s":>8} {"spans/s":>11} {"spans/cpu-s":>12} {"peak RSS MiB":>13} {"RSS B/span":>11}')
for name, m in med.items():
    print(f'{name:14} {m["wall"]:8.2f} {m["cpu"]:8.2f} {n/m["wall"]:11,.0f} {n/m["cpu"]:12,.0f} {m["rss_kb"]/1024:13,.0f} {m["rss_kb"]*1024/n:11,.0f}')
if "ours" in med:
    for peer in ("naive", "duckpeer"):
        if peer in med:
            print(f'ours vs {peer}: {med[peer]["wall"]/med["ours"]["wall"]:.2f}x faster (wall), '
                  f'{med[peer]["rss_kb"]/med["ours"]["rss_kb"]:.2f}x less peak RSS')
EOF
