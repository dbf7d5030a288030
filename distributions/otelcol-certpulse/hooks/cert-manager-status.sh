#!/bin/sh
# cert-manager path: turns a cert-manager Certificate's status (and the
# certificate in its Secret) into a certpulse lifecycle event: `issued` when
# Ready=True, `renewal_failed` with cert-manager's message when Ready=False.
#
# From a Kubernetes Job or CronJob (see cert-manager-job.yaml):
#   kubectl get certificate "$NAME" -n "$NS" -o json > cert.json
#   kubectl get secret "$SECRET" -n "$NS" -o jsonpath='{.data.tls\.crt}' | base64 -d > tls.crt
#   cert-manager-status.sh cert.json tls.crt
#
# Needs jq, curl, openssl. Uses certpulse-send's variables (CERTPULSE_URL,
# CERTPULSE_TOKEN, CERTPULSE_HMAC_SECRET); CERTPULSE_SERVICE defaults to the
# Certificate's name, CERTPULSE_ENVIRONMENT and CERTPULSE_CLUSTER are optional.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 certificate.json tls.crt" >&2; exit 2; }
here=$(dirname "$0")
certjson=$1 crt=$2
ready=$(jq -r '[.status.conditions[]? | select(.type=="Ready")][0].status // "Unknown"' "$certjson")
name=$(jq -r '.metadata.name' "$certjson")
ns=$(jq -r '.metadata.namespace // "default"' "$certjson")
revision=$(jq -r '.status.revision // 0' "$certjson")
if [ "$ready" = "True" ]; then
  event=issued
  pem=$(cat "$crt")
else
  event=renewal_failed
  pem=""
fi
jq -n --arg type "$event" --arg id "cert-manager-$ns-$name-$revision-$event" \
  --arg service "${CERTPULSE_SERVICE:-$name}" --arg env "${CERTPULSE_ENVIRONMENT:-}" \
  --arg cluster "${CERTPULSE_CLUSTER:-}" --arg pem "$pem" --slurpfile cert "$certjson" '
  ($cert[0]) as $c
  | {type: $type, id: $id, source: "cert-manager", service: $service,
     endpoints: [($c.spec.dnsNames // [])[] | . + ":443"],
     job_id: ("certificate/" + ($c.metadata.namespace // "default") + "/" + $c.metadata.name + "@" + (($c.status.revision // 0) | tostring)),
     message: ([$c.status.conditions[]? | select(.type=="Ready")][0].message // "")}
  + (if $env != "" then {environment: $env} else {} end)
  + (if $cluster != "" then {cluster: $cluster} else {} end)
  + (if $pem != "" then {certificate: {pem: $pem}} else {} end)' |
  "$here/certpulse-send"
