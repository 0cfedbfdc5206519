#!/usr/bin/env bash
# make demo: builds real etcd and kube-apiserver (cached), trace-capture, and
# runs the whole job on them locally (test/e2e/scenario). Everything runs on
# loopback; the processes and temporary files are cleaned up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TRACE_CAPTURE_CACHE:-$HOME/.cache/trace-capture}
echo "demo: building real etcd and kube-apiserver into $cache (cached; the first build takes 10-20 minutes on 2 cores)" >&2
etcd=$(hack/build-component.sh etcd | tail -n 1)
apiserver=$(hack/build-component.sh kube-apiserver | tail -n 1)
echo "demo: building trace-capture" >&2
make -s build
go build -o bin/demo ./test/e2e/cmd/demo
exec bin/demo -trace-capture bin/trace-capture -etcd "$etcd" -kube-apiserver "$apiserver" -dir "${DEMO_DIR:-demo-out}" -load "${DEMO_LOAD:-20s}"
