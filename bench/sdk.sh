#!/bin/sh
# hutchd through the official e2b JS SDK: create, time to a first command,
# commands.run round trip, 100 MB uploads and downloads, with host baselines.
#
#   sh bench/sdk.sh [RUNS [TRANSFER_RUNS [SIZE_MB]]]
#                   (defaults 200, 10, 100; `make bench-sdk` runs this)
#
# Builds the non-sanitizer build/hutchd, installs the pinned SDK in
# bench/sdk/node_modules (npm ci), then runs bench/sdk/bench.mjs, which
# starts its own hutchd (--log warn) and prints the exact commands it times
# and a table per section.  See bench/README.md.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${1:-200}
TRANSFER_RUNS=${2:-10}
SIZE_MB=${3:-100}

for n in "$RUNS" "$TRANSFER_RUNS" "$SIZE_MB"; do
  case $n in
    '' | *[!0-9]*)
      echo "usage: sh bench/sdk.sh [RUNS [TRANSFER_RUNS [SIZE_MB]]]" >&2
      exit 2
      ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-sdk: hutchd needs root (namespaces, cgroups, uid ranges); run this as root" >&2
  exit 1
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "bench-sdk: node and npm are needed (the e2b SDK is a Node package)" >&2
  exit 1
fi

# Only what the benchmark runs, and the optimised build, not build/asan/.
make -s BUILD="$BUILD" "$BUILD/hutchd"
(cd bench/sdk && npm ci --no-audit --no-fund --loglevel=error)

echo "bench-sdk: hutchd at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'), $(nproc) cpus, $(date -u '+%Y-%m-%d %H:%M UTC')"
HUTCHD_BIN=${HUTCHD_BIN:-$PWD/$BUILD/hutchd}
export HUTCHD_BIN
set -- node --expose-gc bench/sdk/bench.mjs --runs "$RUNS" --transfer-runs "$TRANSFER_RUNS" --size-mb "$SIZE_MB"
echo "bench-sdk: HUTCHD_BIN=$HUTCHD_BIN $*"
exec "$@"
