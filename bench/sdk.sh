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

. bench/node-bench.sh
bench_numbers "sh bench/sdk.sh [RUNS [TRANSFER_RUNS [SIZE_MB]]]" "$RUNS" "$TRANSFER_RUNS" "$SIZE_MB"
bench_prepare bench-sdk bench/sdk "the e2b SDK is a Node package"
bench_describe bench-sdk
set -- node --expose-gc bench/sdk/bench.mjs --runs "$RUNS" --transfer-runs "$TRANSFER_RUNS" --size-mb "$SIZE_MB"
echo "bench-sdk: HUTCHD_BIN=$HUTCHD_BIN $*"
exec "$@"
