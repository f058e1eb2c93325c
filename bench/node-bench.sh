# Sourced by bench/sdk.sh and bench/interp.sh: what a benchmark that drives
# hutchd through a Node SDK checks and prepares before it runs.

# Every argument after USAGE is a whole number, or exit 2 with USAGE.
bench_numbers() {
  usage=$1
  shift
  for n in "$@"; do
    case $n in
      '' | *[!0-9]*)
        echo "usage: $usage" >&2
        exit 2
        ;;
    esac
  done
}

# NAME (the benchmark's, for messages) runs as root with node and npm
# (WHY: what needs them); builds the optimised build/hutchd (not
# build/asan/) and installs the pinned SDK of DIR (npm ci).
bench_prepare() {
  name=$1 dir=$2 why=$3
  if [ "$(id -u)" -ne 0 ]; then
    echo "$name: hutchd needs root (namespaces, cgroups, uid ranges); run this as root" >&2
    exit 1
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "$name: node and npm are needed ($why)" >&2
    exit 1
  fi
  make -s BUILD="$BUILD" "$BUILD/hutchd"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

# One line: the commit, whether the build has uncommitted sources in it,
# the cpus and the time; then HUTCHD_BIN is exported.
bench_describe() {
  name=$1
  changed=$(git status --porcelain -- src Makefile 2>/dev/null | wc -l)
  [ "$changed" -eq 0 ] && changed= || changed=" + $changed uncommitted files in src/ and Makefile"
  echo "$name: hutchd at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$changed, $(nproc) cpus, $(date -u '+%Y-%m-%d %H:%M UTC')"
  HUTCHD_BIN=${HUTCHD_BIN:-$PWD/$BUILD/hutchd}
  export HUTCHD_BIN
}
