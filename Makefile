# Quick start: `make run` (install, build, start granary server), `make test` (install, build,
# run every test). Both run unattended.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
DATA       ?= $(CURDIR)/.granary-data
JOBS       ?= $(shell nproc)
# Seconds the libFuzzer targets run during `make test`.
FUZZ_SECONDS ?= 20
export CCACHE_DIR ?= $(HOME)/.cache/ccache
export CCACHE_MAXSIZE ?= 5G
# Hits across clones at different paths (CI builds a fresh clone each time).
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
# The precompiled header (CMakeLists.txt) is cacheable only with these.
export CCACHE_SLOPPINESS ?= pch_defines,time_macros,include_file_mtime,include_file_ctime

CMAKE_GEN = cmake -G Ninja -Wno-dev

.PHONY: all deps build test test-main test-asan test-fuzz run bench format tidy clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	$(CMAKE_GEN) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Every test in the optimised build (with assertions), then the unit tests under ASan+UBSan,
# then a short fuzzing run. Set SKIP_OPTIMISED=1 / SKIP_ASAN=1 / SKIP_FUZZ=1 to leave a stage out
# locally.
test: build
	@scripts/run-tests.sh

run: build
	mkdir -p $(DATA)
	$(BUILD)/bin/granary server --data $(DATA)

bench: build
	bench/datapath.sh

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

tidy: build
	git ls-files '*.cpp' | grep -v _test.cpp | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
