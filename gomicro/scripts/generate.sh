#!/usr/bin/env bash
# Regenerates gomicro/examples/tutorial/gen/ from its proto/ with buf,
# protoc-gen-go (pinned in Herald's tools/go.mod) and Go Micro's
# protoc-gen-micro (a tool of the gomicro module). Needs no network beyond the
# Go module proxy.
#
#   gomicro/scripts/generate.sh          regenerate
#   gomicro/scripts/generate.sh --check  regenerate and fail if gen/ changed
set -euo pipefail
cd "$(dirname "$0")/../examples/tutorial"

buf() { go tool -modfile=../../../tools/go.mod buf "$@"; }

buf lint
buf generate

if [ "${1:-}" = --check ]; then
	changes="$(git status --porcelain --untracked-files=all -- gen/)"
	if [ -n "$changes" ]; then
		echo "gomicro generate --check: gen/ is out of date:" >&2
		echo "$changes" >&2
		echo "run gomicro/scripts/generate.sh and commit gen/." >&2
		exit 1
	fi
	echo "gomicro generate --check: gen/ is up to date"
fi
