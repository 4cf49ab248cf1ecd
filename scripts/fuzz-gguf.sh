#!/usr/bin/env bash
# Fuzzes the GGUF reader: scripts/fuzz.sh gguf SECONDS (kept for old habits; see fuzz.sh).
# Usage: scripts/fuzz-gguf.sh SECONDS
exec "$(dirname "$0")/fuzz.sh" gguf "$@"
