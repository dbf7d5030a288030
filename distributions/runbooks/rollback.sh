#!/bin/sh
# rollback: restores the bundle the incident names as last known good
# (Incident.last_good_chain: the certpulse.chain.sha256 served when the
# endpoint was last healthy) from the archive, installs it, reloads.
# Reports `rolled_back`.
#   CERTPULSE_ARCHIVE  directory of earlier bundles (*.pem: chain, in
#                      order; a key beside each as NAME.key when separate),
#                      e.g. certbot's archive as your deploy writes it
#   CERTPULSE_BUNDLE   where the proxy reads its chain
#   CERTPULSE_KEY      where the proxy reads its key (when separate)
. "$(dirname "$0")/lib.sh"
archive=$(expand "${CERTPULSE_ARCHIVE:?set CERTPULSE_ARCHIVE}")
bundle=$(expand "${CERTPULSE_BUNDLE:?set CERTPULSE_BUNDLE}")
[ -n "$LAST_GOOD" ] || fail "the incident names no last known good chain"
case $LAST_GOOD in *[!0-9a-f]*) fail "last known good chain '$LAST_GOOD' is not a hex fingerprint" ;; esac
found=""
for f in "$archive"/*.pem; do
  [ -e "$f" ] || continue
  if [ "$(chain_sha256 "$f")" = "$LAST_GOOD" ]; then found=$f; break; fi
done
[ -n "$found" ] || fail "no bundle in $archive has chain $LAST_GOOD"
if [ -n "${CERTPULSE_KEY:-}" ] && [ -f "${found%.pem}.key" ]; then
  key=$(expand "$CERTPULSE_KEY")
  cp "${found%.pem}.key" "$key.tmp" && mv "$key.tmp" "$key" || fail "cannot install $key"
fi
cp "$found" "$bundle.tmp" && mv "$bundle.tmp" "$bundle" || fail "cannot install $bundle"
reload_proxy
done_ok rolled_back "restored $(basename "$found") (chain $(printf '%s' "$LAST_GOOD" | cut -c1-12)) for incident $INCIDENT, attempt $ATTEMPT"
