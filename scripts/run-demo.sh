#!/usr/bin/env bash
# Starts the certpulse fault lab and the distribution with demo.yaml.
# Used by `make run`; stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/otelcol-certpulse}
LAB=${LAB:-bin/certpulse-lab}
work=$(mktemp -d "${TMPDIR:-/tmp}/certpulse-demo.XXXXXX")
export CERTPULSE_LAB_DIR="$work/lab" CERTPULSE_DEMO_OUT="${CERTPULSE_DEMO_OUT:-$work/out}"
# Demo-only credentials for the certlifecycle webhook (receiver/certlifecyclereceiver/README.md: curl example).
export CERTPULSE_DEMO_TOKEN="${CERTPULSE_DEMO_TOKEN:-demo-token}"
export CERTPULSE_DEMO_HMAC_SECRET="${CERTPULSE_DEMO_HMAC_SECRET:-demo-hmac-secret-0123456789}"
mkdir -p "$CERTPULSE_LAB_DIR" "$CERTPULSE_DEMO_OUT"

"$LAB" -dir "$CERTPULSE_LAB_DIR" &
lab_pid=$!
trap 'kill $lab_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  [ -f "$CERTPULSE_LAB_DIR/targets.yaml" ] && break
  kill -0 "$lab_pid" 2>/dev/null || { echo "certpulse-lab exited" >&2; exit 1; }
  sleep 0.1
done
[ -f "$CERTPULSE_LAB_DIR/targets.yaml" ] || { echo "certpulse-lab did not start" >&2; exit 1; }
echo "full probe records: $CERTPULSE_DEMO_OUT/probes.jsonl (metrics: metrics.jsonl)"
echo "lifecycle webhook: http://127.0.0.1:4380/v1/lifecycle (token $CERTPULSE_DEMO_TOKEN, HMAC secret $CERTPULSE_DEMO_HMAC_SECRET)"
echo "starting $BIN with distributions/otelcol-certpulse/demo.yaml; Ctrl-C stops"
# One readable line per probe result and per incident transition: the debug
# exporter's batch headers (Logs {...}, ResourceLog #n, ScopeLog #n) are
# dropped; on a terminal, lines are coloured (green: healthy or resolved,
# red: alert or page, yellow: any other finding). CERTPULSE_DEMO_RAW=1 shows
# the debug exporter's output unchanged.
pretty() {
  if [ -n "${CERTPULSE_DEMO_RAW:-}" ]; then cat; return; fi
  local red="" yellow="" green="" reset=""
  if [ -t 1 ]; then red=$'\e[31m' yellow=$'\e[33m' green=$'\e[32m' reset=$'\e[0m'; fi
  awk -v red="$red" -v yellow="$yellow" -v green="$green" -v reset="$reset" '
    /^(Logs|Metrics|Traces)\t\{/ || /^ResourceLog #[0-9]+/ || /^ScopeLog #[0-9]+/ { next }
    / resolved / || /certpulse\.reason=ok( |$)/ { print green $0 reset; fflush(); next }
    /^\[(alert|page)\]/ { print red $0 reset; fflush(); next }
    /certpulse\.reason=/ || /^\[(ticket|info)\]/ { print yellow $0 reset; fflush(); next }
    { print; fflush() }'
}
"$BIN" --config distributions/otelcol-certpulse/demo.yaml | pretty
