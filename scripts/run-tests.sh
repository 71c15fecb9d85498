#!/usr/bin/env bash
# The body of `make test` after the build: all tests in the optimised build, unit tests under
# ASan+UBSan, and the libFuzzer targets for a short while. Fails on the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
start=$(date +%s)

stage() { echo; echo "=== $* ($(($(date +%s) - start)) s in)"; }

if [[ "${SKIP_OPTIMISED:-0}" != 1 ]]; then
  stage "all tests, optimised build with assertions"
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 900
fi

if [[ "${SKIP_ASAN:-0}" != 1 ]]; then
  stage "unit tests under ASan+UBSan"
  if [[ ! -f "$ASAN_BUILD/build.ninja" ]]; then
    cmake -G Ninja -Wno-dev -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Release -DGRANARY_SANITIZE=ON
  fi
  # Only the binaries that hold unit tests (as the optimised build's ctest lists them) and what
  # they link are built here. Unit tests that are scripts (helm, kubectl, the CLI's help) ran in
  # the optimised build and have no code of ours to sanitize; the Kubernetes side (kube client,
  # operator, dashboard document) ran there too, also against real processes: CI's time under
  # the sanitizers goes to the data and metadata paths, whose bugs lose bytes.
  tests=$(ctest --test-dir "$BUILD" -L unit --show-only=json-v1)
  wanted='select((.command[0] | test("_test$")) and
                 (.command[0] | test("(^|/)(kube|operator|dashboard)_[^/]*$") | not))'
  targets=$(jq -r ".tests[] | $wanted | .command[0]" <<<"$tests" | xargs -n1 basename | sort -u)
  others=$(jq -r ".tests[] | select([.] | map($wanted) | length == 0) | .name" \
             <<<"$tests" | sed 's/[.]/[.]/g' | paste -sd'|')
  cmake --build "$ASAN_BUILD" -j "$JOBS" --target $targets
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp \
    ctest --test-dir "$ASAN_BUILD" -j "$JOBS" -L unit ${others:+-E "^($others)\$"} \
      --output-on-failure --timeout 900
fi

if [[ "${SKIP_FUZZ:-0}" != 1 ]]; then
  stage "libFuzzer targets, ${FUZZ_SECONDS} s each"
  if [[ ! -f "$FUZZ_BUILD/build.ninja" ]]; then
    CC=clang CXX=clang++ cmake -G Ninja -Wno-dev -S . -B "$FUZZ_BUILD" \
      -DCMAKE_BUILD_TYPE=Release -DGRANARY_FUZZ=ON
  fi
  cmake --build "$FUZZ_BUILD" -j "$JOBS" --target fuzz_targets
  for target in "$FUZZ_BUILD"/fuzz/fuzz_*; do
    [[ -x "$target" ]] || continue
    name=$(basename "$target")
    corpus="$FUZZ_BUILD/corpus/$name"
    mkdir -p "$corpus"
    # Seeds and every crash ever found are kept in fuzz/corpus/<name>/ and replayed first.
    "$target" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" "fuzz/corpus/$name"
  done
fi

stage "done"
