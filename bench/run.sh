#!/bin/sh
# Sandbox creation benchmark: hutch (library and CLI) against bwrap.
#
#   sh bench/run.sh [ITERATIONS]     (default 300; `make bench` runs this)
#
# Builds what it needs, then runs build/bench-spawn, which prints the exact
# commands it times and a table of min/p50/p90/p99/max per variant.  See
# bench/README.md.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERATIONS=${1:-300}

case $ITERATIONS in
  '' | *[!0-9]*)
    echo "usage: sh bench/run.sh [ITERATIONS]" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: hutch needs root (namespaces, cgroups, uid ranges); run this as root" >&2
  exit 1
fi

if ! command -v bwrap >/dev/null 2>&1; then
  echo "bench: bwrap (Debian's bubblewrap) is not installed; run 'make deps'" >&2
  exit 1
fi

# Only what the benchmark runs: an unrelated target that does not build yet
# must not stop it.
make -s BUILD="$BUILD" "$BUILD/hutch" "$BUILD/bench-spawn"

echo "bench: $(bwrap --version), $(nproc) cpus, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "bench: $BUILD/bench-spawn $ITERATIONS"
exec "$BUILD/bench-spawn" "$ITERATIONS"
