#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real: curl, openssl and jq
# (the hook senders), prometheus-alertmanager (remediation alerts), chromium
# (the approval page), prometheus (its promtool: the alert rules' unit tests),
# podman (`make image`), nginx (edge nodes for tlsprobe's `nodes` tests, edge
# telemetry), haproxy and caddy (edge telemetry), webhook (adnanh/webhook,
# the runbooks' runner) and certbot (the remediation testbed's ACME client),
# ca-certificates (the image's trust store) and etcd-server (the store of
# `make k8s`'s real kube-apiserver), prometheus-blackbox-exporter (the
# Prometheus pipeline `make testbed-detect` measures certpulse against),
# libnss3-tools (certutil: the NSS database `make nel`'s Chromium trusts the
# lab root from), and the client matrix's real clients (`make clients`):
# gnutls-bin (gnutls-cli), nodejs and openjdk-17-jdk-headless (java, javac);
# python3 comes with the machine image.
# kubectl (`kubectl kustomize`, offline) comes with the machine image;
# Debian's kubernetes-client is too old for kustomize v5 files. Without them
# those tests skip locally; in CI (CI=true) they fail. Needs root (or sudo)
# and apt.
set -euo pipefail
# chromium: fonts-liberation is only a Recommends, and the page needs a font to lay out.
declare -A pkg=([curl]=curl [openssl]=openssl [jq]=jq [prometheus-alertmanager]=prometheus-alertmanager [chromium]="chromium fonts-liberation" [podman]=podman [promtool]=prometheus [nginx]=nginx [haproxy]=haproxy [caddy]=caddy [webhook]=webhook [certbot]=certbot [flock]=util-linux [etcd]=etcd-server [prometheus-blackbox-exporter]=prometheus-blackbox-exporter [certutil]=libnss3-tools [gnutls-cli]=gnutls-bin [node]=nodejs [javac]=openjdk-17-jdk-headless)
missing=""
for bin in "${!pkg[@]}"; do command -v "$bin" >/dev/null || missing="$missing ${pkg[$bin]}"; done
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"
# The LogQL grammar (@grafana/lezer-logql, pinned in tools/logql) for the
# dashboards' LogQL check, from the npm registry.
top=$(cd "$(dirname "$0")/.." && pwd)
if command -v npm >/dev/null && [ ! -d "$top/tools/logql/node_modules/@grafana/lezer-logql" ]; then
  npm ci --prefix "$top/tools/logql" --silent --no-audit --no-fund
fi
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
# --no-install-recommends keeps chromium's footprint small.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
