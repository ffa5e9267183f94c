#!/usr/bin/env bash
# Installs the Debian packages kinfer builds and tests with. Idempotent: when every
# package is already installed it checks with one dpkg-query and exits in well under a second.
# Usage: scripts/deps.sh [build|test|bench|all]   (default: all)
set -euo pipefail

build_pkgs=(
  build-essential pkg-config clang-format
  libcurl4-openssl-dev libjson-c-dev libyaml-dev libssl-dev libwebsockets-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler libopenblas-dev
  libonnx-dev libonnx-testdata libcmocka-dev
)
test_pkgs=(
  openssl curl ca-certificates procps psmisc iproute2 lua5.4 python3-yaml
  clang libclang-rt-14-dev valgrind
  python3-venv python3-torch python3-torchvision
  umoci
  containernetworking-plugins libseccomp-dev nftables conntrack
)
bench_pkgs=(wrk hyperfine)

want=()
case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test)  want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all)   want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "deps.sh: unknown set '$1' (build|test|bench|all)" >&2; exit 2 ;;
esac

missing=()
while read -r pkg status; do
  [ "$status" = "installed" ] || missing+=("$pkg")
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${want[@]}" 2>/dev/null || true)
# dpkg-query prints nothing for packages it has never heard of.
for p in "${want[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# An install can fail on stale package lists; update once and retry.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/kinfer-apt.log 2>&1; then
  apt-get update -q >>/tmp/kinfer-apt.log 2>&1 || { tail -20 /tmp/kinfer-apt.log >&2; exit 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/kinfer-apt.log 2>&1 \
    || { echo "deps.sh: apt-get install failed:" >&2; tail -20 /tmp/kinfer-apt.log >&2; exit 1; }
fi
