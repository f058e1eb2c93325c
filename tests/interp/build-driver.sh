#!/bin/sh
# Build build/interp-driver (tests/interp/interp-driver.c with src/interp
# and what it needs).  CFLAGS adds flags, e.g. the sanitizers:
#   CFLAGS='-O1 -g -fsanitize=address,undefined' tests/interp/build-driver.sh
# pyzygote.c is left out unless PYZYGOTE=1: Python kernels then start
# from the python3 kernelspec.
set -e
cd "$(dirname "$0")/../.."
mkdir -p build
PKGS="libmicrohttpd jansson libzmq libcrypto libseccomp"
ZYGOTE=""
if [ "${PYZYGOTE:-0}" = 1 ]; then
  PKGS="$PKGS python3-embed"
  ZYGOTE="-DWITH_PYZYGOTE src/interp/pyzygote.c src/interp/pyzygote-pools.c"
fi
# shellcheck disable=SC2046
exec ${CC:-gcc} -std=gnu17 -Isrc -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -Wformat=2 -Wvla -Wwrite-strings -Wno-unused-parameter \
  $(pkg-config --cflags $PKGS) ${CFLAGS:--O2 -g} -o "${OUT:-build/interp-driver}" \
  tests/interp/interp-driver.c $ZYGOTE $(ls src/interp/*.c | grep -v pyzygote) src/common/http.c \
  src/agent/users.c src/agent/child-setup.c src/agent/agent-state.c src/libhutch/*.c $(pkg-config --libs $PKGS) -lpthread
