#!/usr/bin/env bash
# `make base-image`: a Debian bookworm + Python 3.11 + pip base image built from Debian packages
# with debootstrap, for machines that cannot pull python:3.11-slim from a registry.
#   usage: scripts/base_image.sh IMAGE_NAME        (REBUILD=1 rebuilds an existing image)
# Needs root, debootstrap and a Docker engine; only the Debian mirror (DEBIAN_MIRROR) is reached.
set -euo pipefail
name=${1:?usage: base_image.sh IMAGE_NAME}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -z "${REBUILD:-}" ] && docker image inspect "$name" >/dev/null 2>&1; then
  echo "base-image: $name exists (REBUILD=1 rebuilds it)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror (about 1.5 min)"
# minbase + what BentoML's Dockerfile runs: python3 with venv and pip (pip installs uv), CA
# certificates, and passwd (groupadd/useradd create the bentoml user).
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates,passwd \
  bookworm "$root" "$mirror" >/dev/null
# Nothing of apt's caches, docs or man pages is needed at run time.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
# PIP_BREAK_SYSTEM_PACKAGES: BentoML's Dockerfile runs `pip install uv` with the system Python,
# which Debian marks as externally managed (PEP 668).
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'CMD ["python3"]' \
  - "$name" >/dev/null
docker image ls "$name" --format 'base-image: {{.Repository}}:{{.Tag}} {{.Size}}'
