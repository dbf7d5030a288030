#!/bin/sh
# Shared by the certpulse runbooks (sourced, not run). A runbook is run by
# adnanh/webhook with the whole request body as its first argument, after
# hooks.json's trigger rule checked the body's HMAC-SHA256
# (signature_scheme: body on the remediation exporter's action). The body
# is the exporter's default action body: IdempotencyKey, Timestamp,
# Attempt, Operation and the Incident (id, service, endpoints,
# last_good_chain, ...).
#
# Environment (set on the webhook process; it passes it on):
#   CERTPULSE_RUNBOOK_STATE    state directory (keys seen), default /var/lib/certpulse-runbooks
#   CERTPULSE_RUNBOOK_MAX_AGE  oldest request accepted, seconds, default 300
#   CERTPULSE_BUNDLE, CERTPULSE_KEY, CERTPULSE_ARCHIVE, CERTPULSE_BUNDLE_SOURCE:
#                              paths; {service} stands for the incident's service
#   CERTPULSE_SEND             path of certpulse-send (default: beside this file,
#                              the repository's distributions/otelcol-certpulse/hooks/, or PATH)
#   CERTPULSE_URL, CERTPULSE_TOKEN, CERTPULSE_HMAC_SECRET: certpulse-send's
#
# A request older than the max age (or from the future) is refused, and so
# is a key already running; a key already done answers "already done"
# without running again (a retry whose answer was lost). A failed run
# forgets its key, so the exporter's retry of the same attempt runs again.
set -eu
runbook=$(basename "$0" .sh)
here=$(cd "$(dirname "$0")" && pwd)
payload=${1:-}
send=${CERTPULSE_SEND:-}
if [ -z "$send" ]; then
  for s in "$here/certpulse-send" "$here/../otelcol-certpulse/hooks/certpulse-send" "$(command -v certpulse-send || true)"; do
    if [ -n "$s" ] && [ -x "$s" ]; then send=$s; break; fi
  done
fi
state=${CERTPULSE_RUNBOOK_STATE:-/var/lib/certpulse-runbooks}
max_age=${CERTPULSE_RUNBOOK_MAX_AGE:-300}

refuse() { echo "$runbook: refused: $*" >&2; exit 3; }
command -v jq >/dev/null || refuse "jq is required"
[ -n "$payload" ] || refuse "no request body (hooks.json passes it as the first argument)"
printf '%s' "$payload" | jq -e 'type == "object"' >/dev/null 2>&1 || refuse "the request body is not a JSON object"
field() { printf '%s' "$payload" | jq -r "$1 // empty"; }

KEY=$(field .IdempotencyKey)
TS=$(field .Timestamp)
ATTEMPT=$(field .Attempt)
INCIDENT=$(field .Incident.id)
SERVICE=$(field .Incident.service)
REASON=$(field .Incident.reason)
LAST_GOOD=$(field .Incident.last_good_chain)
ENDPOINTS_JSON=$(printf '%s' "$payload" | jq -c '.Incident.endpoints // []')
[ -n "$KEY" ] && [ -n "$TS" ] || refuse "the signed body carries no IdempotencyKey or Timestamp"
case $TS in *[!0-9]*) refuse "Timestamp $TS is not Unix seconds" ;; esac
now=$(date +%s)
age=$((now - TS))
[ "$age" -le "$max_age" ] || refuse "stale request: signed ${age}s ago (CERTPULSE_RUNBOOK_MAX_AGE=$max_age)"
[ "$age" -ge -60 ] || refuse "request from the future (${age}s)"

mkdir -p "$state/keys"
keydir="$state/keys/$(printf '%s' "$KEY" | sha256sum | cut -c1-64)"
if ! mkdir "$keydir" 2>/dev/null; then
  if [ -f "$keydir/done" ]; then
    echo "$runbook: already done: $KEY (not run again)"
    exit 0
  fi
  refuse "$KEY is running"
fi
printf '%s\n' "$KEY" >"$keydir/key"
finish() {
  rc=$?
  if [ "$rc" -ne 0 ] && [ ! -f "$keydir/done" ]; then
    rm -rf "$keydir"
  fi
  exit "$rc"
}
trap finish EXIT

# report TYPE MESSAGE: a lifecycle event for the incident, carrying the
# idempotency key (job_id), through certpulse-send.
report() {
  jq -nc --arg type "$1" --arg msg "$2" --arg svc "$SERVICE" --arg inc "$INCIDENT" --arg key "$KEY" \
    --arg id "$runbook-$1-$KEY" --argjson eps "$ENDPOINTS_JSON" \
    '{type: $type, id: $id, source: "certpulse-runbook", service: $svc, endpoints: $eps, incident_id: $inc, job_id: $key, message: $msg}' |
    "${send:-certpulse-send}" >/dev/null || echo "$runbook: report $1 not delivered (certpulse-send failed)" >&2
}

# done_ok TYPE MESSAGE: the run succeeded; reported, and the key kept.
# Every run is logged in $state/runs.log (done or failed, with its key).
done_ok() {
  touch "$keydir/done"
  printf '%s done %s %s\n' "$(date +%s)" "$runbook" "$KEY" >>"$state/runs.log"
  report "$1" "$2"
  echo "$runbook: $2"
}

# fail MESSAGE: reported as deploy_failed, the key forgotten.
fail() {
  printf '%s failed %s %s\n' "$(date +%s)" "$runbook" "$KEY" >>"$state/runs.log"
  report deploy_failed "$runbook failed: $*"
  echo "$runbook: failed: $*" >&2
  exit 1
}

# chain_sha256 FILE: certpulse.chain.sha256 of a PEM bundle: SHA-256 over
# the SHA-256 of each certificate's DER, in order (as tlsprobe reports it).
chain_sha256() {
  tmpd=$(mktemp -d)
  awk -v d="$tmpd" '/-----BEGIN CERTIFICATE-----/{n++; f=sprintf("%s/%04d.pem", d, n)} n{print > f} /-----END CERTIFICATE-----/{close(f)}' "$1"
  for c in "$tmpd"/*.pem; do
    [ -e "$c" ] || continue
    openssl x509 -in "$c" -outform DER | openssl dgst -sha256 -binary
  done | openssl dgst -sha256 -r | cut -d' ' -f1
  rm -rf "$tmpd"
}

# expand PATH: {service} in a configured path becomes the incident's
# service (one bundle per service: CERTPULSE_BUNDLE=/etc/nginx/certs/{service}/fullchain.pem).
expand() {
  case $SERVICE in *[!A-Za-z0-9._-]*|'') fail "unexpected service name '$SERVICE'" ;; esac
  printf '%s' "$1" | sed "s/{service}/$SERVICE/g"
}

# archive_bundle CHAIN KEY: keeps a deployed bundle (and its key) in
# CERTPULSE_ARCHIVE, where a later rollback finds it by chain fingerprint.
archive_bundle() {
  [ -n "${CERTPULSE_ARCHIVE:-}" ] || return 0
  a=$(expand "$CERTPULSE_ARCHIVE")
  mkdir -p "$a"
  base="$a/$SERVICE-$(chain_sha256 "$1" | cut -c1-16)"
  cp "$1" "$base.pem" && { [ -z "$2" ] || cp "$2" "$base.key"; } || echo "$runbook: could not archive $1" >&2
}

# reload_proxy: CERTPULSE_RELOAD_CMD, else nginx -s reload.
reload_proxy() {
  cmd=${CERTPULSE_RELOAD_CMD:-nginx -s reload}
  sh -c "$cmd" || fail "reload ($cmd) failed"
}
