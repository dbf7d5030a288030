#!/bin/sh
# reload: reloads the proxy (CERTPULSE_RELOAD_CMD, default `nginx -s
# reload`; HAProxy: `systemctl reload haproxy` or
# `kill -USR2 $(cat /run/haproxy.pid)`), e.g. for a stale OCSP staple.
# Reports `deployed` (which re-probes the endpoints).
. "$(dirname "$0")/lib.sh"
reload_proxy
done_ok deployed "reloaded the proxy for incident $INCIDENT ($REASON), attempt $ATTEMPT"
