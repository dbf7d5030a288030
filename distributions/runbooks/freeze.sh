#!/bin/sh
# freeze: safe mode for the rollout. Writes the marker your deploy pipeline
# checks before each step (CERTPULSE_FREEZE_FILE, default
# $CERTPULSE_RUNBOOK_STATE/frozen) and changes no certificate. Reports
# `frozen`. Remove the file to resume rollouts.
. "$(dirname "$0")/lib.sh"
marker=$(expand "${CERTPULSE_FREEZE_FILE:-$state/frozen}")
jq -nc --arg inc "$INCIDENT" --arg svc "$SERVICE" --arg reason "$REASON" --arg key "$KEY" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  '{frozen_at: $at, incident_id: $inc, service: $svc, reason: $reason, idempotency_key: $key}' >"$marker.tmp" &&
  mv "$marker.tmp" "$marker" || fail "cannot write $marker"
done_ok frozen "rollouts frozen ($marker) for incident $INCIDENT ($REASON) on $SERVICE"
