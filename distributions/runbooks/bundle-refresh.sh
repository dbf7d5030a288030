#!/bin/sh
# bundle_refresh: reinstalls the bundle from the source of truth (a file
# your deploy pipeline owns), e.g. when a deploy shipped the leaf without
# its intermediate, then reloads. Reports `deployed`.
#   CERTPULSE_BUNDLE_SOURCE  the bundle as it should be
#   CERTPULSE_BUNDLE         where the proxy reads its chain
. "$(dirname "$0")/lib.sh"
src=$(expand "${CERTPULSE_BUNDLE_SOURCE:?set CERTPULSE_BUNDLE_SOURCE}")
bundle=$(expand "${CERTPULSE_BUNDLE:?set CERTPULSE_BUNDLE}")
[ -r "$src" ] || fail "cannot read $src"
n=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$src" || true)
[ "$n" -ge 2 ] || fail "$src holds $n certificate(s): a bundle needs the leaf and its intermediates"
cp "$src" "$bundle.tmp" && mv "$bundle.tmp" "$bundle" || fail "cannot install $bundle"
reload_proxy
done_ok deployed "refreshed $bundle from $src ($n certificates) for incident $INCIDENT, attempt $ATTEMPT"
