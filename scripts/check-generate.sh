#!/usr/bin/env bash
# Regenerates gen/ in the working tree and fails when that changed anything:
# the committed generated code must be what proto/ and the pinned generators
# produce. Run by CI and by the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/generate.sh
changes="$(git status --porcelain --untracked-files=all -- gen/)"
if [ -n "$changes" ]; then
	echo "check-generate: gen/ is out of date with proto/ or the generators in tools/go.mod:" >&2
	echo "$changes" >&2
	git --no-pager diff --stat -- gen/ >&2 || true
	echo "check-generate: run scripts/generate.sh and commit gen/." >&2
	exit 1
fi
echo "check-generate: gen/ is up to date"
