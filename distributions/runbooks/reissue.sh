#!/bin/sh
# reissue: renews the certificate now with the ACME client, installs it
# and reloads the proxy. Reports `deployed`, or `deploy_failed` when the CA
# refuses.
#   CERTPULSE_CERT_NAME   certbot --cert-name (default: the incident's service)
#   CERTPULSE_CERTBOT     certbot command (default certbot)
#   CERTBOT_ARGS          extra certbot arguments (--server, --config-dir, ...)
#   CERTPULSE_BUNDLE      where the proxy reads its bundle (fullchain + key,
#                         concatenated); unset when the proxy reads certbot's
#                         live/ files itself
#   CERTPULSE_KEY         where the proxy reads the key, when separate
. "$(dirname "$0")/lib.sh"
name=${CERTPULSE_CERT_NAME:-$SERVICE}
case $name in *[!A-Za-z0-9._-]*|'') fail "unexpected certificate name '$name'" ;; esac
certbot=${CERTPULSE_CERTBOT:-certbot}
# shellcheck disable=SC2086
out=$($certbot renew --cert-name "$name" --force-renewal --no-random-sleep-on-renew --non-interactive ${CERTBOT_ARGS:-} 2>&1) ||
  fail "certbot renew --cert-name $name: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
live=$($certbot certificates --cert-name "$name" ${CERTBOT_ARGS:-} 2>/dev/null | sed -n 's/^ *Certificate Path: *//p' | head -n1)
live=$(dirname "${live:-/etc/letsencrypt/live/$name/fullchain.pem}")
if [ -n "${CERTPULSE_BUNDLE:-}" ]; then
  cp "$live/fullchain.pem" "$CERTPULSE_BUNDLE.tmp" && mv "$CERTPULSE_BUNDLE.tmp" "$CERTPULSE_BUNDLE" || fail "cannot install $CERTPULSE_BUNDLE"
fi
if [ -n "${CERTPULSE_KEY:-}" ]; then
  cp "$live/privkey.pem" "$CERTPULSE_KEY.tmp" && mv "$CERTPULSE_KEY.tmp" "$CERTPULSE_KEY" || fail "cannot install $CERTPULSE_KEY"
fi
reload_proxy
done_ok deployed "reissued $name ($(chain_sha256 "$live/fullchain.pem" | cut -c1-12)) and reloaded, incident $INCIDENT, attempt $ATTEMPT"
