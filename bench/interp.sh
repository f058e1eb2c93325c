#!/bin/sh
# hutchd's code interpreter through @e2b/code-interpreter: create -> first
# runCode, a warm runCode round trip, and how many idle sandboxes with
# pandas and matplotlib loaded fit in memory, beside a local ipykernel
# driven by Debian's jupyter_client.
#
#   sh bench/interp.sh [RUNS [SANDBOXES [WARM_RUNS]]]
#                      (defaults 100, 500, 1000; `make bench-interp` runs this)
#
# Builds the non-sanitizer build/hutchd, installs the pinned SDK in
# bench/interp/node_modules (npm ci), then runs bench/interp/bench.mjs, which
# starts its own hutchd (--log warn) and the baseline
# (/usr/bin/python3 bench/interp/baseline.py serve), and prints the exact
# commands, which Python kernels the sandboxes run (cold or pyzygote), and a
# table per section.  See bench/README.md.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${1:-100}
SANDBOXES=${2:-500}
WARM_RUNS=${3:-1000}

. bench/node-bench.sh
bench_numbers "sh bench/interp.sh [RUNS [SANDBOXES [WARM_RUNS]]]" "$RUNS" "$SANDBOXES" "$WARM_RUNS"
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import jupyter_client, ipykernel' 2>/dev/null; then
  echo "bench-interp: $PYTHON lacks jupyter_client or ipykernel (the baseline); make deps installs them" >&2
  exit 1
fi
export PYTHON

bench_prepare bench-interp bench/interp "@e2b/code-interpreter is a Node package"
bench_describe bench-interp
set -- node bench/interp/bench.mjs --runs "$RUNS" --warm-runs "$WARM_RUNS" --sandboxes "$SANDBOXES"
echo "bench-interp: HUTCHD_BIN=$HUTCHD_BIN $*"
exec "$@"
