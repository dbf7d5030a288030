#!/bin/sh
# reissue: renews the certificate now with the ACME client, installs it
# and reloads the proxy. Reports `deployed`, or `deploy_failed` when the CA
# refuses.
#   CERTPULSE_CERT_NAME   certbot --cert-name (default: the incident's service)
#   CERTPULSE_CERTBOT     certbot command (default certbot)
#   CERTBOT_ARGS          extra certbot arguments (--config-dir, ...)
#   CERTPULSE_CERTBOT_LOCK  the lock certbot runs under (flock), default
#                         $CERTPULSE_RUNBOOK_STATE/certbot.lock; share it with
#                         your other certbot runs (the renewal timer)
#   CERTPULSE_BUNDLE      where the proxy reads its bundle (fullchain + key,
#                         concatenated); unset when the proxy reads certbot's
#                         live/ files itself
#   CERTPULSE_KEY         where the proxy reads the key, when separate
. "$(dirname "$0")/lib.sh"
name=${CERTPULSE_CERT_NAME:-$SERVICE}
case $name in *[!A-Za-z0-9._-]*|'') fail "unexpected certificate name '$name'" ;; esac
certbot=${CERTPULSE_CERTBOT:-certbot}
# One certbot at a time (it refuses to run beside itself): flock queues them.
lock=""
command -v flock >/dev/null && lock="flock ${CERTPULSE_CERTBOT_LOCK:-$state/certbot.lock}"
# shellcheck disable=SC2086
out=$($lock $certbot renew --cert-name "$name" --force-renewal --no-random-sleep-on-renew --non-interactive ${CERTBOT_ARGS:-} 2>&1) ||
  fail "certbot renew --cert-name $name: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
live=$($lock $certbot certificates --cert-name "$name" ${CERTBOT_ARGS:-} 2>/dev/null | sed -n 's/^ *Certificate Path: *//p' | head -n1)
live=$(dirname "${live:-/etc/letsencrypt/live/$name/fullchain.pem}")
# The key first: nginx must never pair the new chain with the old key.
if [ -n "${CERTPULSE_KEY:-}" ]; then
  key=$(expand "$CERTPULSE_KEY")
  cp "$live/privkey.pem" "$key.tmp" && mv "$key.tmp" "$key" || fail "cannot install $key"
fi
if [ -n "${CERTPULSE_BUNDLE:-}" ]; then
  bundle=$(expand "$CERTPULSE_BUNDLE")
  cp "$live/fullchain.pem" "$bundle.tmp" && mv "$bundle.tmp" "$bundle" || fail "cannot install $bundle"
fi
archive_bundle "$live/fullchain.pem" "$live/privkey.pem"
reload_proxy
done_ok deployed "reissued $name ($(chain_sha256 "$live/fullchain.pem" | cut -c1-12)) and reloaded, incident $INCIDENT, attempt $ATTEMPT"
