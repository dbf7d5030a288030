#!/usr/bin/env bash
# Builds the otelcol-certpulse OCI image with podman (or buildah), FROM
# scratch, without any registry. Usage: build-image.sh BINARY IMAGE_REF
# The binary must be static (make builds it with CGO_ENABLED=0).
set -euo pipefail
bin=${1:?binary}
ref=${2:?image reference}
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$bundle" ]; then
  echo "build-image: $bundle is missing: install Debian's ca-certificates (the image's default trust store comes from it)" >&2
  exit 1
fi
if command -v podman >/dev/null; then
  tool=podman
elif command -v buildah >/dev/null; then
  tool=buildah
else
  echo "build-image: podman or buildah is required (apt-get install podman)" >&2
  exit 1
fi
if ldd "$bin" >/dev/null 2>&1; then
  echo "build-image: $bin is dynamically linked; a FROM scratch image needs a static binary" >&2
  exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/otelcol-certpulse"
cp "$bundle" "$ctx/ca-certificates.crt"
cp "$top/distributions/otelcol-certpulse/single-tier.yaml" "$ctx/config.yaml"
cp "$top/distributions/image/"{Containerfile,passwd,group,hosts,targets.yaml} "$ctx/"
mkdir "$ctx/state"
if [ "$tool" = podman ]; then
  podman build --quiet -f "$ctx/Containerfile" -t "$ref" "$ctx"
else
  buildah bud --quiet -f "$ctx/Containerfile" -t "$ref" "$ctx"
fi
echo "built $ref"
