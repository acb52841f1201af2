#!/usr/bin/env bash
# `make bench-memory-parts`: what each part of `pantau all` keeps per target.
#
# Runs the debug binary built with the system malloc (`--no-default-features`,
# so heaptrack sees every allocation) under heaptrack with MEM_TARGETS (30000)
# HTTP targets every 300 s against nginx on a free loopback port, default
# rules on. Once every target has been checked once, it waits MEM_STEADY
# (100) seconds (the first checks' idle keep-alive connections time out
# after 90), kills it, and prints what was still allocated, per target and
# per part (scripts/memory_parts.py groups the allocation stacks).
# Needs heaptrack and nginx (Debian: heaptrack, nginx-light); says so when
# they are missing. Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${MEM_TARGETS:-30000}
STEADY=${MEM_STEADY:-100}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${PANTAU_BIN:-$TARGET/heap/pantau}
# PANTAU_* would be read as configuration by pantau itself.
unset PANTAU_BIN
for tool in heaptrack heaptrack_print; do
    command -v "$tool" >/dev/null || { echo "memory-parts: $tool is missing (Debian package heaptrack)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "memory-parts: nginx is missing (Debian package nginx-light)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "memory-parts: $BIN is missing (cargo build --profile heap --bin pantau --no-default-features)" >&2; exit 1; }
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 200000 ]; then
    echo "memory-parts: MEM_TARGETS=$N: a number 1..=200000" >&2
    exit 1
fi

WORK=$(mktemp -d)
PANTAU_PID=""
cleanup() {
    [ -n "$PANTAU_PID" ] && kill -9 "$PANTAU_PID" 2>/dev/null || true
    "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -s stop 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WEB=$(free_port)
mkdir -p "$WORK/nginx/logs" "$WORK/data"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/nginx/logs/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$WEB; location / { return 200 "ok"; } }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"

ports=()
for _ in $(seq 1 11); do ports+=("$(free_port)"); done
{
    cat <<EOF
listen_host: 127.0.0.1
data_dir: $WORK/data
admin_port: ${ports[0]}
shutdown_grace: 5s
log: {format: json, level: warn}
gateway:
  port: ${ports[1]}
  collector_url: http://127.0.0.1:${ports[2]}
  alert_engine_url: http://127.0.0.1:${ports[4]}
  notifier_url: http://127.0.0.1:${ports[6]}
  wan_detector_url: http://127.0.0.1:${ports[8]}
  sync_url: http://127.0.0.1:${ports[10]}
  auth: {enabled: false}
sync: {grpc_port: ${ports[10]}}
wan_detector: {grpc_port: ${ports[8]}, admin_port: ${ports[9]}}
alert_engine: {grpc_port: ${ports[4]}, admin_port: ${ports[5]}, default_rules: true}
notifier: {grpc_port: ${ports[6]}, admin_port: ${ports[7]}}
collector:
  grpc_port: ${ports[2]}
  admin_port: ${ports[3]}
  interval: 300s
  timeout: 5s
  workers: {concurrency: 1024}
  targets:
EOF
    for i in $(seq 0 $((N - 1))); do
        echo "    - {id: h$i, type: http, url: \"http://127.0.0.1:$WEB/t/$i\", labels: {bench: \"yes\"}}"
    done
} >"$WORK/pantau.yaml"

echo "memory-parts: $N HTTP targets every 300 s against nginx on 127.0.0.1:$WEB, default rules on, under heaptrack"
heaptrack -o "$WORK/heap" "$BIN" --config "$WORK/pantau.yaml" all >"$WORK/pantau.log" 2>&1 &
HEAPTRACK_PID=$!
for _ in $(seq 1 50); do
    PANTAU_PID=$(pgrep -f "^$BIN --config $WORK/pantau.yaml" | head -1 || true)
    [ -n "$PANTAU_PID" ] && break
    sleep 0.2
done
[ -n "$PANTAU_PID" ] || { echo "memory-parts: pantau did not start; its log:" >&2; tail -20 "$WORK/pantau.log" >&2; exit 1; }

checks() {
    { curl -sS "http://127.0.0.1:${ports[0]}/metrics" 2>/dev/null || true; } |
        awk '/^pantau_collector_checks_total/ {s += $2} END {printf "%d", s}'
}
started=$(date +%s)
while :; do
    sleep 5
    if ! kill -0 "$PANTAU_PID" 2>/dev/null; then
        PANTAU_PID=""
        echo "memory-parts: pantau exited; its log ends:" >&2
        tail -20 "$WORK/pantau.log" >&2
        exit 1
    fi
    done_checks=$(checks)
    elapsed=$(($(date +%s) - started))
    echo "  ${elapsed}s: $done_checks of $N first checks"
    [ "$done_checks" -ge "$N" ] && break
    if [ "$elapsed" -gt 600 ]; then
        echo "memory-parts: the first checks did not finish in 600 s; its log ends:" >&2
        tail -20 "$WORK/pantau.log" >&2
        exit 1
    fi
done
echo "  every target checked; reading again in ${STEADY}s"
sleep "$STEADY"
echo "  RSS under heaptrack: $(grep VmRSS /proc/"$PANTAU_PID"/status | awk '{print $2, $3}')"
kill -9 "$PANTAU_PID"
PANTAU_PID=""
wait "$HEAPTRACK_PID" 2>/dev/null || true
heaptrack_print -f "$WORK"/heap.*zst --flamegraph-cost-type leaked -F "$WORK/leaked.folded" >/dev/null
python3 scripts/memory_parts.py "$WORK/leaked.folded" "$N"
