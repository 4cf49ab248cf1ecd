# Convenience targets over the CMake presets (see README.md).
JOBS ?= $(shell nproc)
MODEL ?= ../shared/models/stories260K.gguf
HEARTH := build/hearth

.PHONY: all build run serve test test-unit test-asan fuzz fuzz-smoke bench clean

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

# The whole suite: a 30-second fuzz run of the GGUF reader (when clang is present), the
# parser tests under ASan+UBSan, then the unit + integration tests (their summary last).
test: build fuzz-smoke test-asan test-unit

test-unit: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS)

fuzz-smoke:
	@if ! command -v clang++ >/dev/null 2>&1; then echo "clang++ not found: skipping the fuzz run"; \
	elif scripts/fuzz-gguf.sh 30 > build/fuzz-smoke.log 2>&1; then grep -E '^(Done|stat::number_of_executed_units)' build/fuzz-smoke.log; \
	else tail -n 60 build/fuzz-smoke.log; echo "fuzz-smoke: libFuzzer reported a finding (log: build/fuzz-smoke.log)"; exit 1; fi

# Long fuzz run: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz-gguf.sh $(FUZZ_SECONDS)

bench: build
	build/hearth_microbench

clean:
	rm -rf build build-asan build-fuzz
