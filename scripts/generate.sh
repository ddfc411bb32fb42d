#!/usr/bin/env bash
# Regenerates gen/ from proto/ with buf and the protoc plugins pinned as Go
# tools in tools/go.mod. Needs no network beyond the Go module proxy (no BSR).
set -euo pipefail
cd "$(dirname "$0")/.."

buf() { go tool -modfile=tools/go.mod buf "$@"; }

buf lint
buf generate
