#!/usr/bin/env bash
# Lint the chart: `helm lint --strict` (which also checks values.schema.json) with the default
# values and each example values file, then validate every rendered object against the
# Kubernetes JSON schemas (kubernetes-validate --strict, offline) for 1.33 and 1.35.
#
# Usage: scripts/chart_lint.sh   (helm on PATH: `make chart-lint` puts .tools/ first)
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=charts/reggaeton
KUBE_VERSIONS=(1.33.0 1.35.0)
VALIDATE=(.venv/bin/python -m kubernetes_validate --strict --quiet)
command -v helm >/dev/null || { echo "chart_lint: helm not found (run 'make tools')" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for values in "" k8s/values-dev.yaml k8s/values-prod.yaml; do
  args=()
  [[ -n "$values" ]] && args=(-f "$values")
  echo "== helm lint --strict ${values:-(chart defaults)}"
  helm lint --strict "$CHART" "${args[@]}"
  for kube in "${KUBE_VERSIONS[@]}"; do
    out="$tmp/rendered.yaml"
    helm template reggaeton "$CHART" --kube-version "$kube" "${args[@]}" > "$out"
    echo "== kubernetes-validate --strict -k $kube ${values:-(chart defaults)}: $(grep -c '^kind:' "$out") objects"
    "${VALIDATE[@]}" -k "$kube" "$out"
  done
done
echo "chart_lint: OK"
