#!/usr/bin/env bash
# One image version, set in one place: CMake's project(VERSION) (common/version.h is generated
# from it and is the operator's default image). Chart.yaml's version/appVersion, the chart's
# rendered operator image, and every ghcr.io/granary/granary:<tag> written in the chart, CRDs,
# samples, docs, Dockerfile, code and golden files must carry that version — never :latest.
#   operator_version_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?source dir}
fail() { echo "FAIL: $*"; exit 1; }

version=$(sed -nE 's/^project\(granary VERSION ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' "$src/CMakeLists.txt")
[[ -n $version ]] || fail "no project(granary VERSION x.y.z) in CMakeLists.txt"

chart=$src/charts/granary/Chart.yaml
[[ $(sed -nE 's/^version: *"?([^"]*)"?$/\1/p' "$chart") == "$version" ]] ||
  fail "Chart.yaml version is not $version"
[[ $(sed -nE 's/^appVersion: *"?([^"]*)"?$/\1/p' "$chart") == "$version" ]] ||
  fail "Chart.yaml appVersion is not $version"

# Every literal reference (templated ones such as {{ … }} are checked through helm below).
refs=$(cd "$src" && grep -rnoE 'ghcr\.io/granary/granary:[A-Za-z0-9._-]+' \
  charts crds deploy docs README.md Dockerfile operator common cmd csi tests/operator_golden || true)
[[ -n $refs ]] || fail "no image reference found at all (the grep is broken)"
bad=$(grep -vE ":ghcr\.io/granary/granary:${version//./\\.}\$" <<<"$refs" || true)
[[ -z $bad ]] || fail "image references that are not :$version:"$'\n'"$bad"
n=$(wc -l <<<"$refs")

helm=$(command -v helm || true)
[[ -n $helm ]] || fail "helm not on PATH (run scripts/install-deps.sh)"
rendered=$("$helm" template rel "$src/charts/granary" --namespace anywhere \
  --set defaultCluster.enabled=true)
images=$(grep -oE 'image: *"?ghcr\.io/granary/granary:[^" ]+' <<<"$rendered" | sort -u)
[[ $images == "image: ghcr.io/granary/granary:$version" ]] ||
  fail "the chart renders $images, not ghcr.io/granary/granary:$version"
echo "PASS: $n image references, Chart.yaml and the rendered chart all say $version"
