#!/usr/bin/env bash
# Installs every Debian package (and npm tool) Granary builds, tests or benchmarks with.
# Idempotent and quick when everything is present: apt-get runs only for what is missing.
set -euo pipefail

APT_PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang clang-format clang-tidy
  libclang-rt-14-dev
  # libraries (DESIGN §10)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev liburing-dev libisal-dev libyaml-cpp-dev libcpprest-dev libfuse3-dev fuse3
  libssl-dev libboost-dev libboost-system-dev libcli11-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libpugixml-dev libgtest-dev libgmock-dev libbenchmark-dev libraft-dev
  # tools the tests and benchmarks drive
  fio iperf3 jq rocksdb-tools util-linux e2fsprogs procps iproute2 python3 curl
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"
