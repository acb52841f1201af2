#!/usr/bin/env bash
# `make fuzz-api`: schemathesis (PyPI, in .venv-fuzz) generates requests from
# the gateway's own OpenAPI document against a real `pantau all` on loopback
# ports, authenticated with an admin token from `pantau token create`, and
# runs every check (`--checks all`): no 5xx, every status and every response
# body as documented, schema-valid requests accepted and invalid ones refused,
# auth enforced. The few rules the document cannot state are listed, with
# why, in scripts/fuzz-api.toml. The WebSocket (/api/v1/monitoring/events)
# is left out: schemathesis speaks HTTP only. FUZZ_EXAMPLES (default 50)
# bounds the cases per operation, FUZZ_SECONDS (default 300) the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${PANTAU_BIN:-$TARGET/debug/pantau}
# PANTAU_* would be read as configuration by pantau itself.
unset PANTAU_BIN
SCHEMATHESIS=.venv-fuzz/bin/schemathesis
[ -x "$BIN" ] || { echo "fuzz-api: $BIN is missing: run cargo build --bin pantau"; exit 1; }
[ -x "$SCHEMATHESIS" ] || { echo "fuzz-api: $SCHEMATHESIS is missing: run make deps-fuzz (PyPI package schemathesis)"; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true
  mkdir -p "$TARGET/fuzz-api" && cp -r "$work/pantau.log" "$work/report" "$TARGET/fuzz-api/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ports=($(/usr/bin/python3 - <<'PY'
import socket
socks = []
for _ in range(13):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
))
secret="fuzz-api-secret-of-more-than-32-characters"
cat > "$work/pantau.yaml" <<YAML
listen_host: 127.0.0.1
data_dir: $work/data
admin_port: ${ports[0]}
log:
  level: warn
collector:
  grpc_port: ${ports[1]}
  admin_port: ${ports[2]}
  interval: 2s
  timeout: 1s
  targets:
    - id: gateway-health
      type: http
      url: http://127.0.0.1:${ports[3]}/healthz
    - id: collector-grpc
      type: tcp
      address: 127.0.0.1:${ports[1]}
gateway:
  port: ${ports[3]}
  collector_url: http://127.0.0.1:${ports[1]}
  alert_engine_url: http://127.0.0.1:${ports[4]}
  notifier_url: http://127.0.0.1:${ports[6]}
  wan_detector_url: http://127.0.0.1:${ports[8]}
  rate_limit:
    requests_per_second: 0
  auth:
    jwt_secret: $secret
alert_engine:
  grpc_port: ${ports[4]}
  admin_port: ${ports[5]}
notifier:
  grpc_port: ${ports[6]}
  admin_port: ${ports[7]}
wan_detector:
  grpc_port: ${ports[8]}
  admin_port: ${ports[9]}
sync:
  grpc_port: ${ports[10]}
  admin_port: ${ports[11]}
YAML
"$BIN" --config "$work/pantau.yaml" all 2> "$work/pantau.log" &
pid=$!
base="http://127.0.0.1:${ports[3]}"
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "fuzz-api: pantau exited:"; cat "$work/pantau.log"; exit 1; }
  sleep 0.2
done
token=$("$BIN" --config "$work/pantau.yaml" token create --scope admin --ttl 2h --subject fuzz 2>/dev/null)
echo "fuzz-api: pantau all on $base; running schemathesis"
status=0
started=$SECONDS
"$SCHEMATHESIS" --config-file scripts/fuzz-api.toml run "$base/api/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks all \
  --exclude-path /api/v1/monitoring/events \
  --max-examples "${FUZZ_EXAMPLES:-50}" \
  --max-time "${FUZZ_SECONDS:-300}" \
  --workers 2 \
  --seed "${FUZZ_SEED:-1}" \
  --report junit,pytest,ndjson --report-dir "$work/report" || status=$?
echo "fuzz-api: schemathesis ran $((SECONDS - started)) s; the server's log and the reports are kept in $TARGET/fuzz-api/"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "fuzz-api: pantau died during the run:"; tail -50 "$work/pantau.log"; exit 1
fi
if grep -q 'panicked' "$work/pantau.log"; then
  echo "fuzz-api: pantau panicked during the run:"; grep -A3 'panicked' "$work/pantau.log" | head -40 || true
  status=1
fi
exit $status
