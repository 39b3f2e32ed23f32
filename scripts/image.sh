#!/usr/bin/env bash
# `make image`: containerize the service and jobs Bentos with `bentoml containerize`.
#   usage: scripts/image.sh TAG
# Environment:
#   BASE_IMAGE  base of both images (default python:3.11-slim; `make base-image` builds a
#               Debian one from packages for machines without registry access).
#   CA_BUNDLE   a PEM CA bundle to trust during the build and at run time (a TLS-intercepting
#               proxy's CA). A CA certificate is public, not a secret: it is layered onto the
#               base image as reggaeton-base-ca:<hash of base and bundle>.
#   BENTOML     the bentoml executable (default .venv/bin/bentoml).
# The builds use the host network (--network host) and the classic builder (DOCKER_BUILDKIT=0
# unless set): Debian's docker.io ships no buildx.
set -euo pipefail
tag=${1:?usage: image.sh TAG}
base=${BASE_IMAGE:-python:3.11-slim}
bentoml=${BENTOML:-.venv/bin/bentoml}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
# BentoML 1.4.40 re-renders docker.dockerfile_template from a temporary copy of the Bento and
# refuses a template outside the working directory, so its temporary files must live below it.
export TMPDIR="$PWD/var/containerize-tmp"
mkdir -p "$TMPDIR"

if [ -n "${CA_BUNDLE:-}" ]; then
  [ -r "$CA_BUNDLE" ] || { echo "image: CA_BUNDLE $CA_BUNDLE is not readable" >&2; exit 1; }
  hash=$( (echo "$base"; cat "$CA_BUNDLE") | sha256sum | cut -c1-12)
  with_ca="reggaeton-base-ca:$hash"
  if ! docker image inspect "$with_ca" >/dev/null 2>&1; then
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp "$CA_BUNDLE" "$ctx/extra-ca.crt"
    # update-ca-certificates merges the bundle into the system store when the base has it;
    # otherwise the bundle is appended to the usual path. Python's ssl (SSL_CERT_FILE), pip
    # (PIP_CERT), uv (SSL_CERT_FILE) and requests (REQUESTS_CA_BUNDLE) then all trust it.
    cat > "$ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
USER root
COPY extra-ca.crt /usr/local/share/ca-certificates/reggaeton-extra-ca.crt
RUN if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; \
    else mkdir -p /etc/ssl/certs && cat /usr/local/share/ca-certificates/reggaeton-extra-ca.crt \
         >> /etc/ssl/certs/ca-certificates.crt; fi
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
DOCKERFILE
    docker build --quiet --network host --build-arg "BASE_IMAGE=$base" -t "$with_ca" "$ctx" >/dev/null
  fi
  echo "image: base $base + CA bundle $CA_BUNDLE = $with_ca"
  base=$with_ca
fi

for bento in reggaeton_service reggaeton_jobs; do
  echo "image: bentoml containerize $bento:latest -> $bento:$tag (base $base)"
  "$bentoml" containerize "$bento:latest" -t "$bento:$tag" \
    --opt network=host --opt "build-arg=BASE_IMAGE=$base"
done
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | awk -v tag="$tag" '$1 == "reggaeton_service:" tag || $1 == "reggaeton_jobs:" tag {print "image size: " $0}'
