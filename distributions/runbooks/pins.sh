#!/bin/sh
# pins (high-risk: the exporter holds it for a person's approval): adds the
# SPKI the endpoints now serve (Incident.spki) to the pin set your clients
# fetch, keeping the old pins, and publishes it. Reports `deployed`.
#   CERTPULSE_PINS_FILE         the pin set, one base64 SHA-256 SPKI a line
#   CERTPULSE_PINS_PUBLISH_CMD  run after the file changed (optional)
. "$(dirname "$0")/lib.sh"
pins=$(expand "${CERTPULSE_PINS_FILE:?set CERTPULSE_PINS_FILE}")
spki=$(field .Incident.spki)
[ -n "$spki" ] || fail "the incident names no SPKI"
case $spki in *[!A-Za-z0-9+/=]*) fail "SPKI '$spki' is not base64" ;; esac
touch "$pins"
if ! grep -qxF "$spki" "$pins"; then
  { cat "$pins"; printf '%s\n' "$spki"; } >"$pins.tmp" && mv "$pins.tmp" "$pins" || fail "cannot write $pins"
fi
if [ -n "${CERTPULSE_PINS_PUBLISH_CMD:-}" ]; then
  sh -c "$CERTPULSE_PINS_PUBLISH_CMD" || fail "publishing the pins ($CERTPULSE_PINS_PUBLISH_CMD) failed"
fi
done_ok deployed "pinned $spki for $SERVICE (incident $INCIDENT, approved attempt $ATTEMPT)"
