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

for n in "$RUNS" "$SANDBOXES" "$WARM_RUNS"; do
  case $n in
    '' | *[!0-9]*)
      echo "usage: sh bench/interp.sh [RUNS [SANDBOXES [WARM_RUNS]]]" >&2
      exit 2
      ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-interp: hutchd needs root (namespaces, cgroups, uid ranges); run this as root" >&2
  exit 1
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "bench-interp: node and npm are needed (@e2b/code-interpreter is a Node package)" >&2
  exit 1
fi

PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import jupyter_client, ipykernel' 2>/dev/null; then
  echo "bench-interp: $PYTHON lacks jupyter_client or ipykernel (the baseline); make deps installs them" >&2
  exit 1
fi
export PYTHON

# Only what the benchmark runs, and the optimised build, not build/asan/.
make -s BUILD="$BUILD" "$BUILD/hutchd"
(cd bench/interp && npm ci --no-audit --no-fund --loglevel=error)

# The commit, and whether the build has uncommitted sources in it.
changed=$(git status --porcelain -- src Makefile 2>/dev/null | wc -l)
[ "$changed" -eq 0 ] && changed= || changed=" + $changed uncommitted files in src/ and Makefile"
echo "bench-interp: hutchd at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$changed, $(nproc) cpus, $(date -u '+%Y-%m-%d %H:%M UTC')"
HUTCHD_BIN=${HUTCHD_BIN:-$PWD/$BUILD/hutchd}
export HUTCHD_BIN
set -- node bench/interp/bench.mjs --runs "$RUNS" --warm-runs "$WARM_RUNS" --sandboxes "$SANDBOXES"
echo "bench-interp: HUTCHD_BIN=$HUTCHD_BIN $*"
exec "$@"
