#!/bin/sh
# Installs every Debian package hutch needs to build, test and run.
# Idempotent: when everything is present it changes nothing.
set -eu

PACKAGES="
  gcc make pkg-config clang-format
  libseccomp-dev libjansson-dev libmicrohttpd-dev libzmq3-dev libssl-dev zlib1g-dev
  libhttp-parser-dev libcurl4-openssl-dev libpython3-dev python3 python3-pytest
  python3-ipykernel python3-jupyter-client python3-zmq python3-numpy python3-pandas python3-matplotlib
  r-cran-irkernel
  node-typescript
  libcriterion-dev bubblewrap iproute2 util-linux procps
  nodejs npm
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

# node and npm may come from elsewhere than Debian; accept them when present.
case " $missing " in *" nodejs "*) command -v node >/dev/null && missing=$(echo "$missing" | sed 's/ nodejs//') ;; esac
case " $missing " in *" npm "*) command -v npm >/dev/null && missing=$(echo "$missing" | sed 's/ npm//') ;; esac

if [ -z "$(echo "$missing" | tr -d ' ')" ]; then
  echo "deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages:$missing" >&2
  echo "deps: run 'make deps' as root to install them" >&2
  exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q $missing
