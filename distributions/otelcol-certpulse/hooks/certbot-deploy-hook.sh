#!/bin/sh
# certbot / lego deploy hook: reports a renewed certificate to certpulse.
#
#   certbot renew --deploy-hook /etc/certpulse/hooks/certbot-deploy-hook.sh
#   lego ... renew --renew-hook /etc/certpulse/hooks/certbot-deploy-hook.sh
#
# certbot sets RENEWED_LINEAGE (directory with cert.pem) and RENEWED_DOMAINS;
# lego sets LEGO_CERT_PATH and LEGO_CERT_DOMAIN. Besides certpulse-send's
# variables (CERTPULSE_URL, CERTPULSE_TOKEN, CERTPULSE_HMAC_SECRET):
#   CERTPULSE_SERVICE      service.name (default: the first domain)
#   CERTPULSE_ENVIRONMENT  deployment environment, optional
#   CERTPULSE_REGION       region, optional
#   CERTPULSE_EVENT        event type, default renewed
#   CERTPULSE_PORT         port of the endpoints, default 443
set -eu
here=$(dirname "$0")
if [ -n "${RENEWED_LINEAGE:-}" ]; then
  cert="$RENEWED_LINEAGE/cert.pem"; domains=${RENEWED_DOMAINS:-}; client=certbot
elif [ -n "${LEGO_CERT_PATH:-}" ]; then
  cert="$LEGO_CERT_PATH"; domains=${LEGO_CERT_DOMAIN:-}; client=lego
else
  echo "certbot-deploy-hook: neither RENEWED_LINEAGE (certbot) nor LEGO_CERT_PATH (lego) is set" >&2
  exit 1
fi
[ -r "$cert" ] || { echo "certbot-deploy-hook: cannot read $cert" >&2; exit 1; }
first=${domains%% *}
service=${CERTPULSE_SERVICE:-$first}
event=${CERTPULSE_EVENT:-renewed}
port=${CERTPULSE_PORT:-443}
# Only plain names go into the JSON unescaped.
for v in "$service" "$event" "$port" ${CERTPULSE_ENVIRONMENT:-} ${CERTPULSE_REGION:-} $domains; do
  case $v in *[!A-Za-z0-9._*-]*) echo "certbot-deploy-hook: unexpected characters in '$v'" >&2; exit 1 ;; esac
done
# The id is derived from the certificate, so a repeated delivery is marked
# as a duplicate by the receiver.
sha=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
pem=$(awk '/-----BEGIN CERTIFICATE-----/{p=1} p{printf "%s\\n", $0} /-----END CERTIFICATE-----/{exit}' "$cert")
endpoints=""
for d in $domains; do
  endpoints="$endpoints${endpoints:+,}\"$d:$port\""
done
extra=""
[ -n "${CERTPULSE_ENVIRONMENT:-}" ] && extra="$extra,\"environment\":\"$CERTPULSE_ENVIRONMENT\""
[ -n "${CERTPULSE_REGION:-}" ] && extra="$extra,\"region\":\"$CERTPULSE_REGION\""
printf '{"type":"%s","id":"%s-%s-%s","source":"%s","service":"%s","endpoints":[%s]%s,"certificate":{"pem":"%s"}}' \
  "$event" "$client" "$event" "$sha" "$client" "$service" "$endpoints" "$extra" "$pem" |
  "$here/certpulse-send"
