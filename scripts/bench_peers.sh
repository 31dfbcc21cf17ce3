#!/usr/bin/env bash
# latcli bench against its peers: speed and honesty (issue 5, item 7; docs/benchmarks.md).
#
# Usage: scripts/bench_peers.sh [--quick] [--only a,b,c,d,e] [--out DIR]
#   a  throughput against nginx /health, concurrency 50: latcli as it runs by default (one
#      worker per core, issue 14 item 4), then in one process (--workers 1), vs locust
#      FastHttpUser (1 process) and hey
#   b  overhead against a target that answers in exactly 20 ms, concurrency 10: latcli vs wrk
#   c  open model at 2,000 req/s (achieved rate, schedule lag), then an impossible rate
#      (must say invalid and exit 3)
#   d  coordinated omission: a server that stalls 500 ms every 2 s, --rate 200
#      --max-in-flight 10 vs the analytic p90/p99, with hey's closed-model p99 for contrast
#   e  memory: 10 minutes at 2,000 req/s, RSS sampled every 10 s (skipped by --quick)
# Every tool runs 10 s, one after the other, against loopback only; every figure of the table
# comes from this one run (raw outputs kept in --out, default a fresh /tmp/bench-peers.*).
# Installs nginx, hey and wrk from Debian and locust (into /tmp/locust-venv, never the
# project) when missing. Exit 0 if every criterion passed, 1 if one failed, 2 on bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

ONLY="a,b,c,d,e"
QUICK=0
OUT=""
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --only)
            ONLY="${2:?--only needs a list, e.g. a,b}"
            shift
            ;;
        --out)
            OUT="${2:?--out needs a directory}"
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "bench_peers.sh: unknown argument $1 (see --help)" >&2
            exit 2
            ;;
    esac
    shift
done
want() {
    [[ ",$ONLY," == *",$1,"* ]] || return 1
    [[ $1 != e || $QUICK -eq 0 ]]
}

DURATION=10s
E_DURATION=600s
LOCUST_VENV=/tmp/locust-venv
LATCLI=(env -u PYTHONDONTWRITEBYTECODE uv run --quiet latcli bench)
# A run that outlives its duration by a minute gets Ctrl-C (it still reports, exit 130).
GRACE_S=60
PY=(uv run --quiet python)

if [[ -n $OUT ]]; then
    mkdir -p "$OUT"
    RUN=$(cd "$OUT" && pwd)
else
    RUN=$(mktemp -d /tmp/bench-peers.XXXXXX)
fi
log() { printf '[%s load %s] %s\n' "$(date +%T)" "$(cut -d' ' -f1 /proc/loadavg)" "$*" >&2; }

# ---- processes this script starts, stopped on exit ---------------------------------------
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools ------------------------------------------------------------------------------
install_tools() {
    local missing=() t cand
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    command -v hey >/dev/null || missing+=(hey)
    command -v wrk >/dev/null || missing+=(wrk)
    : >"$RUN/tools.txt"
    if ((${#missing[@]})); then
        log "installing from Debian: ${missing[*]}"
        apt-get update -qq
        for t in "${missing[@]}"; do
            cand=$(apt-cache policy "$t" | awk '/Candidate:/ {print $2}')
            if [[ -n $cand && $cand != "(none)" ]]; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$t" >&2
            else
                log "Debian has no package $t"
            fi
        done
    fi
    for t in nginx wrk; do
        command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] || {
            log "$t is required and could not be installed"
            exit 1
        }
    done
    if command -v hey >/dev/null; then
        echo "hey ok" >>"$RUN/tools.txt"
    else
        # No hey on Debian here, and no registry package that is hey itself: its ratios are n/a.
        log "hey unavailable: its ratios will be n/a"
        echo "hey unavailable" >>"$RUN/tools.txt"
    fi
    if ! "$LOCUST_VENV/bin/locust" --version >/dev/null 2>&1; then
        log "installing locust into $LOCUST_VENV (not the project)"
        uv venv -q "$LOCUST_VENV"
        uv pip install -q --python "$LOCUST_VENV" locust
    fi
    echo "locust ok" >>"$RUN/tools.txt"
}
HAVE_HEY=1
have_hey() { ((HAVE_HEY)); }

versions() {
    local nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    echo "nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
    echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    if have_hey; then
        echo "hey: $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
    else
        echo "hey: unavailable"
    fi
    echo "locust: $("$LOCUST_VENV/bin/locust" --version 2>&1 | awk '{print $2}')"
    echo "latcli: $("${PY[@]}" -c 'import latcli; print(latcli.__version__)')"
}

# ---- servers ----------------------------------------------------------------------------
free_port() {
    "${PY[@]}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT: until something accepts on 127.0.0.1:PORT (10 s at most)
    local i
    for i in $(seq 100); do
        if (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "nothing listens on 127.0.0.1:$1 (try $i)"
    return 1
}

start_nginx() {
    local dir="$RUN/nginx" nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    mkdir -p "$dir/tmp"
    NGINX_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /health {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }
}
EOF
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$NGINX_PORT"
    NGINX_URL="http://127.0.0.1:$NGINX_PORT/health"
    log "nginx (1 worker) on $NGINX_URL"
}

start_py_server() { # SCRIPT NAME: a helper server of scripts/, on a free loopback port
    local script=$1 name=$2 pid port i
    rm -f "$RUN/$name.port"
    "${PY[@]}" "scripts/$script" "$RUN/$name.port" 2>"$RUN/$name.log" &
    pid=$!
    PIDS+=("$pid")
    for i in $(seq 100); do
        [[ -s "$RUN/$name.port" ]] && break
        sleep 0.1
    done
    port=$(cat "$RUN/$name.port")
    wait_port "$port" || {
        log "$script did not start (try $i)"
        exit 1
    }
    SERVER_URL="http://127.0.0.1:$port/health"
    log "$script on $SERVER_URL"
}

# ---- runs -------------------------------------------------------------------------------
latcli_json() { # OUTFILE ARGS...: latcli bench ... --json > OUTFILE; the exit code in OUTFILE.rc
    local out=$1 rc=0
    shift
    log "latcli bench $*"
    timeout -s INT -k 10 $((${DURATION%s} + GRACE_S)) "${LATCLI[@]}" "$@" --json \
        >"$out" 2>"${out%.json}.err" || rc=$?
    echo "$rc" >"${out%.json}.rc"
}

tree_rss_kb() { # PID: summed VmRSS (kB) of PID's descendants (the latcli processes, not uv)
    local queue=("$1") pid kid rss total=0
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        for kid in $(pgrep -P "$pid" || true); do
            queue+=("$kid")
            [[ $(cat "/proc/$kid/comm" 2>/dev/null) == uv ]] && continue # the launcher
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$kid/status" 2>/dev/null || true)
            total=$((total + ${rss:-0}))
        done
    done
    echo "$total"
}

test_a() {
    log "== a. throughput against nginx /health, concurrency 50"
    if have_hey; then
        log "hey -z $DURATION -c 50"
        hey -z "$DURATION" -c 50 "$NGINX_URL" >"$RUN/a_hey.txt" 2>&1 || true
    fi
    log "locust FastHttpUser, 1 process, 50 users"
    "$LOCUST_VENV/bin/locust" -f scripts/locustfile.py --headless -u 50 -r 50 -t "$DURATION" \
        -H "http://127.0.0.1:$NGINX_PORT" --csv "$RUN/a_locust" --only-summary \
        --loglevel WARNING >"$RUN/a_locust.log" 2>&1 || true
    latcli_json "$RUN/a_latcli.json" "$NGINX_URL" --concurrency 50 --duration "$DURATION"
    latcli_json "$RUN/a_latcli_w1.json" "$NGINX_URL" --concurrency 50 --duration "$DURATION" \
        --workers 1
}

test_b() {
    log "== b. overhead against a 20 ms target, concurrency 10"
    start_py_server delay_server.py delay
    log "wrk -c10 -t1 -d$DURATION --latency"
    wrk -c10 -t1 -d"$DURATION" --latency "$SERVER_URL" >"$RUN/b_wrk.txt" 2>&1 || true
    latcli_json "$RUN/b_latcli.json" "$SERVER_URL" --concurrency 10 --duration "$DURATION"
}

test_c() {
    log "== c. open model at 2,000 req/s, then an impossible rate"
    latcli_json "$RUN/c_latcli.json" "$NGINX_URL" --rate 2000 --duration "$DURATION"
    latcli_json "$RUN/c_over.json" "$NGINX_URL" --rate 200000 --duration "$DURATION"
}

test_d() {
    log "== d. coordinated omission: 500 ms stall every 2 s"
    start_py_server stall_server.py stall
    latcli_json "$RUN/d_latcli.json" "$SERVER_URL" --rate 200 --max-in-flight 10 \
        --duration "$DURATION"
    if have_hey; then
        log "hey -z $DURATION -c 10 (closed model)"
        hey -z "$DURATION" -c 10 "$SERVER_URL" >"$RUN/d_hey.txt" 2>&1 || true
    fi
}

test_e() {
    log "== e. memory: $E_DURATION at 2,000 req/s, RSS every 10 s"
    local pid start now next rc=0
    log "latcli bench $NGINX_URL --rate 2000 --duration $E_DURATION"
    timeout -s INT -k 10 $((${E_DURATION%s} + GRACE_S)) \
        "${LATCLI[@]}" "$NGINX_URL" --rate 2000 --duration "$E_DURATION" --json \
        >"$RUN/e_latcli.json" 2>"$RUN/e_latcli.err" &
    pid=$!
    PIDS+=("$pid")
    start=$(date +%s.%N)
    next=10
    printf 'elapsed_s\trss_kb\n' >"$RUN/e_rss.tsv"
    while kill -0 "$pid" 2>/dev/null; do
        now=$(date +%s.%N)
        if awk -v n="$now" -v s="$start" -v t="$next" 'BEGIN {exit !(n - s >= t)}'; then
            printf '%d\t%s\n' "$next" "$(tree_rss_kb "$pid")" >>"$RUN/e_rss.tsv"
            next=$((next + 10))
        fi
        sleep 0.5
    done
    wait "$pid" || rc=$?
    echo "$rc" >"$RUN/e_latcli.rc"
}

# ---- main -------------------------------------------------------------------------------
TESTS=()
for t in a b c d e; do
    if want "$t"; then TESTS+=("$t"); fi
done
echo "${TESTS[*]}" >"$RUN/tests.txt"

install_tools
grep -q '^hey unavailable' "$RUN/tools.txt" && HAVE_HEY=0
UPTIME_BEFORE=$(uptime)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
start_nginx
for t in "${TESTS[@]}"; do
    "test_$t"
done
UPTIME_AFTER=$(uptime)

{
    echo "bench_peers.sh ${TESTS[*]} — started $STARTED, $(nproc) cores; raw outputs in $RUN"
    versions | paste -sd ';' | sed 's/;/; /g'
    echo "uptime before: $UPTIME_BEFORE"
    echo "uptime after:  $UPTIME_AFTER"
    echo
} | tee "$RUN/header.txt"
rc=0
"${PY[@]}" scripts/bench_peers_table.py "$RUN" | tee "$RUN/table.txt" || rc=${PIPESTATUS[0]}
exit "$rc"
