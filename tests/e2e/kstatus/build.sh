#!/usr/bin/env bash
# Builds the kstatus evaluator (main.go, sigs.k8s.io/cli-utils/pkg/kstatus) with Go and the
# module proxy into a cache outside the repository, keyed by the hash of its sources; prints
# the binary's path. `--check` only prints it, failing when it is not built yet.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
KEY="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/main.go" | sha256sum | cut -c1-16)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}/kstatus-$KEY"
BINARY="$CACHE/kstatus"

if [ -x "$BINARY" ]; then
  echo "$BINARY"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "error: the kstatus evaluator is not built; run $0 (or make e2e)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "error: Go is required to build the kstatus evaluator" >&2; exit 1; }
mkdir -p "$CACHE"
(cd "$HERE" && go build -trimpath -ldflags "-s -w" -o "$BINARY.tmp" .) >&2
mv "$BINARY.tmp" "$BINARY"
echo "$BINARY"
