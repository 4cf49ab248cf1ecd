# Convenience targets over the CMake presets (see README.md).
JOBS ?= $(shell nproc)
MODEL ?= ../shared/models/stories260K.gguf
HEARTH := build/hearth

.PHONY: all build run serve test test-unit test-asan test-tsan test-sanitize-full test-aarch64 fuzz fuzz-smoke bench clean

all: build

build:
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

# Hearth's main job today: generate text with a model (the daemon comes next).
run: build
	$(HEARTH) generate -m $(MODEL) -p "Once upon a time" -n 64

MODELS_DIR ?= ../shared/models
serve: build
	$(HEARTH) serve --models-dir $(MODELS_DIR)

# The whole suite: 30-second runs of every fuzz target (when clang is present), the parser
# tests under ASan+UBSan, then the unit + integration tests (their summary last).
test: build fuzz-smoke test-asan test-unit

test-unit: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# The daemon, scheduler and server suites (HTTP loops, runners, the batching engine, the CLI's
# daemon commands) under ThreadSanitizer, and under ASan+UBSan with the whole suite built so.
DAEMON_SUITES := Server Scheduler ServingEngine PrefixCache BatchedEqualsSolo KvCacheRefs Api Http OpenAi Anthropic \
	Responses Think Fields PromptDefault Metrics UiRoutes CliDaemon CliAutostart ThreadPool
space := $(subst ,, )
DAEMON_TESTS ?= $(subst $(space),:,$(addsuffix *,$(DAEMON_SUITES)))
test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	TSAN_OPTIONS="second_deadlock_stack=1 $(TSAN_OPTIONS)" build-tsan/hearth_tests --gtest_filter='$(DAEMON_TESTS)'

test-sanitize-full:
	cmake --preset asan-full >/dev/null
	ASAN_OPTIONS=detect_leaks=0 cmake --build --preset asan-full -j $(JOBS)
	build-asan-full/hearth_tests --gtest_filter='$(DAEMON_TESTS)'

# The aarch64 cross build (Debian's g++-aarch64-linux-gnu) and the unit suite under qemu-user,
# with and without the dot-product extension (scripts/test-aarch64.sh; slow, so not part of
# `make test`).
test-aarch64:
	JOBS=$(JOBS) scripts/test-aarch64.sh

# Every fuzz target (fuzz/fuzz_*.cpp) for 30 s, two at a time; a finding fails with its log tail.
fuzz-smoke:
	@if ! command -v clang++ >/dev/null 2>&1; then echo "clang++ not found: skipping the fuzz runs"; \
	else scripts/fuzz.sh all 30; fi

# Long fuzz runs: make fuzz FUZZ_SECONDS=600 (each target; FUZZ_TARGET=template for one)
FUZZ_SECONDS ?= 600
FUZZ_TARGET ?= all
fuzz:
	scripts/fuzz.sh $(FUZZ_TARGET) $(FUZZ_SECONDS)

bench: build
	build/hearth_microbench

clean:
	rm -rf build build-asan build-asan-full build-tsan build-fuzz build-aarch64
