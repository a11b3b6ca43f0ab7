#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler from the k8s.io/kubernetes
# Go module into a cache outside the repository, once per version. Later runs reuse the
# binaries, so only the first run on a machine pays the 10-20 minute cold build.
#
# k8s.io/kubernetes requires its staging modules at v0.0.0 and resolves them with
# `replace => ./staging/...`, which Go ignores in a dependency; the wrapper module below
# replaces each staging module with its published tag (release v1.M.P <-> staging v0.M.P).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
STAGING_VERSION="0.${K8S_VERSION#1.}"
MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}/k8s-v${K8S_VERSION}"
BIN="$CACHE/bin"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler)

all_built() {
  for c in "${COMPONENTS[@]}"; do [ -x "$BIN/$c" ] || return 1; done
}

if all_built; then
  echo "$BIN"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  # Used by the test fixtures: report a missing build instead of starting a long one.
  echo "error: the control plane v$K8S_VERSION is not built in $BIN; run $0 (or make e2e)" >&2
  exit 1
fi

command -v go >/dev/null || { echo "error: Go is required to build the control plane" >&2; exit 1; }
mkdir -p "$CACHE/src" "$BIN"
cd "$CACHE/src"
if [ ! -f go.mod ]; then
  go mod init local/k8sbins >&2
fi
GOMOD_FILE="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
for module in $(sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$GOMOD_FILE"); do
  go mod edit "-replace=$module=$module@v$STAGING_VERSION"
done
godebug="$(sed -n 's/^godebug default=\(.*\)$/\1/p' "$GOMOD_FILE" | head -1)"
if [ -n "$godebug" ]; then
  go mod edit "-godebug=default=$godebug"
fi
cat > tools.go <<GO
//go:build tools

package k8sbins

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
go get "k8s.io/kubernetes@v$K8S_VERSION" >&2
go mod tidy >&2 || true
for c in "${COMPONENTS[@]}"; do
  echo "building $c v$K8S_VERSION (cold builds take 10-20 minutes)" >&2
  go build -trimpath -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 \
    -X k8s.io/component-base/version.gitMinor=$MINOR" \
    -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c" >&2
  mv "$BIN/$c.tmp" "$BIN/$c"
done
echo "$BIN"
