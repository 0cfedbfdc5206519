#!/usr/bin/env bash
# build-component.sh COMPONENT [VERSION]
#
# Builds a real upstream component from the Go module proxy (no git clone) into a cache that
# later runs reuse:
#
#   ${TRACE_CAPTURE_CACHE:-$HOME/.cache/trace-capture}/bin/<component>-<version>-<goversion>
#
#   COMPONENT  etcd            go.etcd.io/etcd/server/v3  (default v3.6.16, env ETCD_VERSION)
#              kube-apiserver  k8s.io/kubernetes          (default v1.37.2, env KUBE_VERSION)
#
# The path of the binary is the last line on stdout; progress and the build time go to stderr.
# A warm run (binary already cached) returns at once. A cold build costs ~3 CPU-minutes (etcd)
# and ~17 CPU-minutes (kube-apiserver): ~10 min on 2 idle cores, 35-45 min on a busy machine.
#
# How: both upstream go.mod files carry replace directives, so `go install pkg@version` is
# refused. A throwaway main module under the cache dir (never inside the repository) requires the
# upstream module instead; for Kubernetes it pins every staging module (k8s.io/api, ...) to the
# matching v0.<minor>.<patch>, generated from the chosen k8s.io/kubernetes go.mod. The binary is
# built under a temporary name and renamed at the end, so an interrupted build leaves nothing
# half-written; a lock serialises concurrent builds of the same binary.
#
# Environment:
#   TRACE_CAPTURE_CACHE  cache root (default $HOME/.cache/trace-capture)
#   ETCD_VERSION, KUBE_VERSION  versions when VERSION is not given
#   GOCACHE, GOMODCACHE, GOPROXY  honoured as usual (default Go build cache is shared)
#   GOTOOLCHAIN          forced to "local": the Go version in the cache key is the one that built
set -euo pipefail

prog=build-component
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
component=$1
case "$component" in
  etcd) version=${2:-${ETCD_VERSION:-v3.6.16}} ;;
  kube-apiserver) version=${2:-${KUBE_VERSION:-v1.37.2}} ;;
  -h|--help) usage ;;
  *) die "unknown component '$component' (want etcd or kube-apiserver)" ;;
esac
[[ $version == v* ]] || version=v$version
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "bad version '$version'"

command -v go >/dev/null || die "go not found in PATH"
export GOTOOLCHAIN=local
goversion=$(go env GOVERSION)

cache=${TRACE_CAPTURE_CACHE:-$HOME/.cache/trace-capture}
name=$component-$version-$goversion
bin=$cache/bin/$name
mkdir -p "$cache/bin" "$cache/work" "$cache/locks"

if [ -x "$bin" ]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

# One builder per binary: a second caller waits here and then finds the binary cached.
exec 9>"$cache/locks/$name.lock"
if ! flock -n 9; then
  log "another build of $name is running; waiting for it"
  flock 9
fi
if [ -x "$bin" ]; then
  log "cached (built by a concurrent run): $bin"
  printf '%s\n' "$bin"
  exit 0
fi

# Holding the lock: whatever a killed earlier build of this name left is garbage.
rm -rf "$cache/bin/.$name.tmp."* "$cache/work/$name."*
work=$(mktemp -d "$cache/work/$name.XXXXXX")
tmpbin=$cache/bin/.$name.tmp.$$
heartbeat=
child=
cleanup() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
  [ -n "$heartbeat" ] && kill "$heartbeat" 2>/dev/null
  rm -rf "$work" "$tmpbin"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
# Print the elapsed time every 30 s so that a long cold build is visibly alive.
parent=$$
(
  while sleep 30 && kill -0 "$parent" 2>/dev/null; do
    log "still building $name ... $(( $(date +%s) - start ))s"
  done
) 9>&- &
heartbeat=$!

cd "$work"

# run CMD...: runs a long command in the background and waits for it, so that a
# SIGTERM to this script is handled at once (bash defers traps while a
# foreground child runs) and the child is stopped by cleanup. The child does
# not inherit the lock.
run() {
  "$@" 9>&- &
  child=$!
  wait "$child"
  child=
}

# gomod_file MODULE VERSION: downloads MODULE@VERSION and prints the path of its go.mod.
gomod_file() {
  local out file
  out=$(go mod download -json "$1@$2" 2>&1) || die "download $1@$2: $(printf '%s' "$out" | sed -n 's/^[[:space:]]*"Error": //p')"
  file=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$file" ] || die "download $1@$2: no go.mod in the answer"
  printf '%s\n' "$file"
}

build_etcd() {
  local mod=go.etcd.io/etcd/server/v3
  log "building etcd $version with $goversion (cold build: 3 CPU-minutes, 5-12 min)"
  log "downloading $mod@$version"
  local modfile gover
  modfile=$(gomod_file "$mod" "$version")
  gover=$(awk '$1 == "go" { print $2; exit }' "$modfile")
  printf 'module local/etcdbuild\n\ngo %s\n' "${gover:-1.24}" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$mod" > tools.go
  run go get "$mod@$version" >&2
  log "resolving dependencies (go mod tidy)"
  run go mod tidy >&2
  log "compiling $mod"
  run go build -o "$tmpbin" "$mod"
}

build_kube_apiserver() {
  local mod=k8s.io/kubernetes
  local minor=${version#v1.}; minor=${minor%%.*}
  local staging=v0.${version#v1.}        # v1.37.2 -> v0.37.2
  log "building kube-apiserver $version with $goversion (cold build: 17 CPU-minutes, ~10 min on 2 idle cores, 35+ when busy)"
  log "downloading $mod@$version go.mod"
  local modfile gover
  modfile=$(gomod_file "$mod" "$version")
  gover=$(awk '$1 == "go" { print $2; exit }' "$modfile")
  {
    printf 'module local/k8sbuild\n\ngo %s\n\n' "${gover:-1.24.0}"
    # Keep upstream's GODEBUG defaults: they only apply from the main module's go.mod.
    grep -E '^godebug ' "$modfile" || true
    printf '\nrequire %s %s\n\nreplace (\n' "$mod" "$version"
    # k8s.io/<staging> => ./staging/src/k8s.io/<staging>  becomes  k8s.io/<staging> => k8s.io/<staging> v0.X.Y
    grep -E '^[[:space:]]+k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" |
      awk -v sv="$staging" '{ printf "\t%s => %s %s\n", $1, $1, sv }'
    printf ')\n'
  } > go.mod
  local n
  n=$(grep -c ' => k8s.io/' go.mod || true)
  [ "$n" -gt 0 ] || die "no staging replaces found in $modfile"
  log "pinned $n staging modules to $staging"
  if grep -E '^[[:space:]]+[^k[:space:]][^ ]* => ' "$modfile" | grep -v '=> ./staging/' >&2; then
    log "warning: upstream go.mod has non-staging replaces (listed above); they are not copied"
  fi
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/kube-apiserver"\n' "$mod" > tools.go
  log "resolving dependencies (go mod tidy, ~1 min cold)"
  run go mod tidy >&2
  # Without these the binary reports v0.0.0-master+$Format:%H$.
  local ld="" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "compiling $mod/cmd/kube-apiserver"
  run go build -ldflags "$ld" -o "$tmpbin" "$mod/cmd/kube-apiserver"
}

case "$component" in
  etcd) build_etcd ;;
  kube-apiserver) build_kube_apiserver ;;
esac

"$tmpbin" --version >&2 || die "built binary does not run: $tmpbin"
secs=$(( $(date +%s) - start ))
mv -f "$tmpbin" "$bin"
printf 'component=%s\nversion=%s\ngo=%s\nbuild_seconds=%s\nbuilt=%s\n' \
  "$component" "$version" "$goversion" "$secs" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$bin.info"
log "built $name in ${secs}s ($(du -h "$bin" | cut -f1))"
printf '%s\n' "$bin"
