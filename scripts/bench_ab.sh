#!/usr/bin/env bash
# latcli bench A/B: this tree against a base commit, interleaved in one run (a shared, noisy
# machine makes figures from different runs incomparable; docs/benchmarks.md).
#
# Usage: scripts/bench_ab.sh [BASE] [ROUNDS]   (BASE: a commit, default main; ROUNDS: 3)
#   a  nginx /health, -c 50 -d 5s: req/s (median of ROUNDS), new/base
#   b  scripts/delay_server.py (20 ms), -c 10 -d 5s: p50 and p99 (median), new - base
# The base runs from `git archive BASE` (its directory first on sys.path) with this tree's
# virtualenv, so both sides use the same dependencies. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${1:-main}
ROUNDS=${2:-3}
RUN=$(mktemp -d /tmp/bench-ab.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

git archive "$BASE" latcli | tar -x -C "$RUN"
free_port() { uv run --quiet python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

mkdir -p "$RUN/nginx/tmp"
NGINX_PORT=$(free_port)
cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $RUN/nginx/tmp/body;
    proxy_temp_path $RUN/nginx/tmp/proxy;
    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
    scgi_temp_path $RUN/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /health { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
EOF
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" &
PIDS+=($!)
wait_port "$NGINX_PORT"
uv run --quiet python scripts/delay_server.py "$RUN/delay.port" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $RUN/delay.port ]] && break; sleep 0.1; done
DELAY_PORT=$(cat "$RUN/delay.port")

bench() { # SIDE OUT ARGS...: one latcli bench run of SIDE (base|new), JSON to OUT
    local side=$1 out=$2
    shift 2
    if [[ $side == base ]]; then
        (cd "$RUN" && uv run --quiet --project "$ROOT" python -m latcli bench "$@" --json -q \
            >"$out") || true
    else
        uv run --quiet python -m latcli bench "$@" --json -q >"$out" || true
    fi
}
echo "bench_ab.sh: base $(git rev-parse --short "$BASE"), new $(git rev-parse --short HEAD)+tree," \
    "$ROUNDS rounds, $(date -u '+%F %T') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$ROUNDS"); do
    for side in base new; do
        bench "$side" "$RUN/a_${side}_$i.json" "http://127.0.0.1:$NGINX_PORT/health" -c 50 -d 5s
        bench "$side" "$RUN/b_${side}_$i.json" "http://127.0.0.1:$DELAY_PORT/health" -c 10 -d 5s
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); raw outputs in $RUN"
uv run --quiet python - "$RUN" "$ROUNDS" <<'EOF'
import json, statistics, sys
run, rounds = sys.argv[1], int(sys.argv[2])
def med(test, side, get):
    return statistics.median(get(json.load(open(f"{run}/{test}_{side}_{i}.json"))) for i in range(1, rounds + 1))
rps = lambda d: d["throughput_rps"]
a_base, a_new = med("a", "base", rps), med("a", "new", rps)
print(f"a  nginx -c 50: base {a_base:,.0f} req/s  new {a_new:,.0f} req/s  new/base {a_new / a_base:.3f}")
for key in ("p50", "p99"):
    get = lambda d, k=key: d["latency_ms"][k]
    b_base, b_new = med("b", "base", get), med("b", "new", get)
    print(f"b  20 ms -c 10 {key}: base {b_base:.2f} ms  new {b_new:.2f} ms  new-base {b_new - b_base:+.2f} ms")
EOF
