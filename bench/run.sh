#!/usr/bin/env bash
# `just bench`: scenarios S1 (cached schedule read) and S5 (anonymous booking, each with a phone
# token obtained beforehand, not measured) of
# docs/benchmarks.md, and the doctor list and doctor pages (HTML), against the release build,
# each beside baselines measured in the same run (the in-binary /__bench/hello route,
# redis-benchmark GET, the MIS emulator on its own). Every row also reports the app's resident
# memory at its end and the bench database's transactions per request.
# Prints a markdown table and saves it as target/bench/report.md; raw tool output is kept in
# target/bench/raw/. Takes about 4 to 5 minutes (one repetition per measurement).
#
# Knobs (environment): BENCH_DURATION (s per measurement, default 10), BENCH_WARMUP (s, 3),
# BENCH_MIS_LATENCY_MS (D, 20), BENCH_S5_RATE (bookings/s in the open-loop run, 20),
# BENCH_S5_SECONDS (length of that run, 8), BENCH_S5_CLOSED (bookings per step of the capacity
# sweep, 400), BENCH_S5_WORKER_STEPS (the sweep's worker counts, "16 32 64 128": it stops at
# the first step that grows the rate by less than 10 %), BENCH_PG_SETTLE (s waited before
# reading PostgreSQL's counters around S1, 11), BENCH_PORT_BASE (18180: app, +1 MIS, +2 CMS, +3 SMS),
# BENCH_DB (sovamed_bench, dropped and recreated), BENCH_PG_ADMIN_URL, BENCH_SCALE (emulated
# clinic size, 2), BENCH_PIN_SERVICES=1 (also pin redis-server and postgres to core 1; off by
# default because those services may be shared with other work on the machine), BENCH_ONLY
# (`s1`: hello, Redis GET and S1 only; `s5`: the MIS alone and S5's open loop only, with its
# floor and steps; a quicker look at one scenario, whose report leaves the other rows out),
# BENCH_BIN (a sovamed binary built before, e.g. a copy of an earlier commit's, to compare two
# builds in one sitting; the release build is then skipped), BENCH_OUT (where the report and
# raw output go, target/bench).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
D=${BENCH_MIS_LATENCY_MS:-20}
S5_RATE=${BENCH_S5_RATE:-20}
S5_SECONDS=${BENCH_S5_SECONDS:-8}
S5_CLOSED=${BENCH_S5_CLOSED:-400}
S5_STEPS=${BENCH_S5_WORKER_STEPS:-16 32 64 128}
# PostgreSQL 15 holds up to a second of a backend's statistics and, once the backend is idle,
# reports them up to 10 s later (PGSTAT_IDLE_INTERVAL): S1's queries per request are read
# this long after the warm-up and after the run.
PG_SETTLE=${BENCH_PG_SETTLE:-11}
PORT=${BENCH_PORT_BASE:-18180}
DB=${BENCH_DB:-sovamed_bench}
PG_ADMIN=${BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCALE=${BENCH_SCALE:-2}
ONLY=${BENCH_ONLY:-all}
case $ONLY in all | s1 | s5) ;; *) echo "bench: BENCH_ONLY is all, s1 or s5, not $ONLY" >&2; exit 1 ;; esac
runs() { [ "$ONLY" = all ] || [[ " $* " == *" $ONLY "* ]]; } # SCENARIOS: whether this run does one
PG_URL=${PG_ADMIN%/*}/$DB
APP=http://127.0.0.1:$PORT
MIS=http://127.0.0.1:$((PORT + 1))
OUT=${BENCH_OUT:-$ROOT/target/bench}
RAW=$OUT/raw
BIN=${BENCH_BIN:-$ROOT/target/release/sovamed}
PREFIX="bench:$$:"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ tools
log "tools"
if ! command -v oha >/dev/null; then
    echo "installing oha from crates.io (cargo install oha --locked)" >&2
    nice -n 10 cargo install oha --locked
fi
missing_apt=()
command -v wrk >/dev/null || missing_apt+=(wrk)
command -v redis-benchmark >/dev/null || missing_apt+=(redis-tools)
command -v redis-cli >/dev/null || missing_apt+=(redis-tools)
if ((${#missing_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get -o DPkg::Lock::Timeout=300 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing_apt[@]}"
    else
        die "missing ${missing_apt[*]}: install them (e.g. sudo apt-get install ${missing_apt[*]})"
    fi
fi
for tool in oha wrk redis-benchmark redis-cli psql python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# ------------------------------------------------------------------ build
if [ -z "${BENCH_BIN:-}" ]; then
    log "release build"
    nice -n 10 cargo build --release --quiet
fi
[ -x "$BIN" ] || die "no $BIN (after the build, or given as BENCH_BIN)"

# ------------------------------------------------------------------ services
log "services"
pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || die "PostgreSQL does not answer on 127.0.0.1:5432 (just services)"
[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ] || die "Redis does not answer on 127.0.0.1:6379 (just services)"
REDIS_PID=$(redis-cli -h 127.0.0.1 info server | tr -d '\r' | awk -F: '$1=="process_id"{print $2}')
[ -r "/proc/$REDIS_PID/stat" ] || REDIS_PID=0   # Redis in a container: no CPU figure for it

# Pinning (docs/benchmarks.md C.2): the app on core 1, the generators on core 0.
PIN_APP=() PIN_GEN=() PINNING="none (taskset missing or fewer than 2 cores)" PINNED=0
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_APP=(taskset -c 1)
    PIN_GEN=(taskset -c 0)
    PINNED=1
    PINNING="app on core 1; wrk, oha, redis-benchmark, the Python booking driver and the MIS/CMS/SMS emulator on core 0"
    if [ "${BENCH_PIN_SERVICES:-0}" = 1 ]; then
        [ "$REDIS_PID" != 0 ] && taskset -a -p -c 1 "$REDIS_PID" >/dev/null
        for pid in $(pgrep -x postgres || true); do taskset -p -c 1 "$pid" >/dev/null || true; done
        PINNING="$PINNING; redis-server and postgres on core 1"
    else
        PINNING="$PINNING; redis-server and PostgreSQL not pinned (shared services; BENCH_PIN_SERVICES=1 pins them)"
    fi
fi

rm -rf "$RAW"
mkdir -p "$RAW"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    redis-cli -h 127.0.0.1 --scan --pattern "${PREFIX}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -n 9 del "key:__rand_int__" >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_http() { # URL
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$1 does not answer"
}

# ------------------------------------------------------------------ emulator and app
log "MIS/CMS/SMS emulator (scale $SCALE, MIS latency $D ms)"
"${PIN_GEN[@]}" "$BIN" emulate --seed 42 --scale "$SCALE" \
    --mis-bind "127.0.0.1:$((PORT + 1))" --cms-bind "127.0.0.1:$((PORT + 2))" \
    --sms-bind "127.0.0.1:$((PORT + 3))" >"$RAW/emulate.log" 2>&1 &
EMU_PID=$!
PIDS+=("$EMU_PID")
for _ in $(seq 100); do grep -q '^SMSRU_API_ID=' "$RAW/emulate.log" && break; sleep 0.1; done
grep -q '^SMSRU_API_ID=' "$RAW/emulate.log" || die "the emulator did not start: $(cat "$RAW/emulate.log")"
while IFS='=' read -r key value; do
    case $key in
        INFOCLINICA_URL | BITRIX_URL | BITRIX_TOKEN) export "$key=$value" ;;
    esac
done <"$RAW/emulate.log"

# SMS go to the log: the SMS.ru emulator's balance (1000 roubles, 400 one-part messages) would
# not pay for S5's phone codes (one per booking, ~1 800) and booking SMS, and a booking's SMS is
# sent by the outbox worker after the answer anyway. The log backend writes each SMS's text
# (the phone masked), so `bench.py tokens` reads the phone codes from $RAW/serve.log: the SMS
# log lines are kept at info whatever RUST_LOG says.
# Limits: every request comes from one address, so the per-address limits of bookings, uncached
# schedule reads and phone codes are raised out of reach (the limiters still run); each booking
# has its own phone, so the per-phone ones would not bind, and SMS_LIMIT_PER_PHONE_DAY (10; a
# phone gets a code and a booking SMS) keeps its default.
export APP_ENV=development BENCH_ROUTES=1 SMS_PROVIDER=log SYNC_INTERVAL_MINUTES=0 \
    DATABASE_URL=$PG_URL REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX=$PREFIX \
    BIND_ADDR=127.0.0.1:$PORT RESERVE_LIMIT_PER_IP_HOUR=1000000000 \
    RESERVE_LIMIT_PER_PHONE_HOUR=1000000000 SCHEDULE_UNCACHED_READS_PER_IP_MINUTE=1000000000 \
    VERIFY_LIMIT_PER_IP_HOUR=1000000000 VERIFY_LIMIT_PER_PHONE_HOUR=1000000000 \
    SCHEDULE_CACHE_TTL_SECONDS=3600 \
    JWT_SECRET=bench-only-secret-0123456789abcdef0123456789abcdef \
    RUST_LOG=${RUST_LOG:-info},sovamed::integrations::sms::log=info
POOL_SIZE=${DATABASE_POOL_SIZE:-16}
export DATABASE_POOL_SIZE=$POOL_SIZE

log "database $DB (dropped and recreated), sync from the emulator"
psql "$PG_ADMIN" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
"$BIN" sync all >"$RAW/sync.log" 2>&1 || die "sync failed: $(tail -5 "$RAW/sync.log")"

log "server (BENCH_ROUTES=1) on $APP"
"${PIN_APP[@]}" "$BIN" serve >"$RAW/serve.log" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")
wait_http "$APP/healthz"
[ "$(curl -fsS "$APP/__bench/hello")" = ok ] || die "/__bench/hello does not answer ok"

cpu() { # NAME: CPU snapshot of the app, redis-server, the MIS emulator and the bench
    # database's backends; the app's VmRSS; the bench database's transaction counters
    python3 bench/bench.py cpu --app "$APP_PID" --redis "$REDIS_PID" --mis "$EMU_PID" \
        --pg-db "$DB" --pg-admin-url "$PG_ADMIN" --out "$RAW/$1.json"
}
pg_mark() { # NAME: the bench database's transaction counters once every backend has reported
    sleep "$PG_SETTLE"
    python3 bench/bench.py pgstat --pg-db "$DB" --pg-admin-url "$PG_ADMIN" --out "$RAW/$1.json"
}
wrk_run() { # NAME URL [settle]: with `settle`, PostgreSQL's counters settled around the run too
    "${PIN_GEN[@]}" wrk -t1 -c64 -d"${WARMUP}s" "$2" >/dev/null
    if [ "${3:-}" = settle ]; then pg_mark "$1.wrk.pg0"; fi
    cpu "$1.wrk.cpu0"
    "${PIN_GEN[@]}" wrk -t1 -c64 -d"${DURATION}s" --latency "$2" >"$RAW/$1.wrk.txt"
    cpu "$1.wrk.cpu1"
    if [ "${3:-}" = settle ]; then pg_mark "$1.wrk.pg1"; fi
    grep 'Requests/sec' "$RAW/$1.wrk.txt" >&2
}
mis_calls() { # NAME: the MIS emulator's per-message call counters
    curl -fsS "$MIS/_emulator/calls" >"$RAW/$1.json"
}
capacity() { # NAME: requests/s of the wrk run
    awk '/^Requests\/sec:/{printf "%d", $2}' "$RAW/$1.wrk.txt"
}
oha_run() { # NAME RATE URL [oha args...]
    local name=$1 rate=$2 url=$3
    shift 3
    cpu "$name.oha.cpu0"
    "${PIN_GEN[@]}" oha -z "${DURATION}s" -c 64 -q "$rate" --latency-correction --no-tui \
        --output-format json "$@" "$url" >"$RAW/$name.oha.json"
    cpu "$name.oha.cpu1"
    python3 bench/bench.py oha-line "$RAW/$name.oha.json" "$name" >&2
}

# ------------------------------------------------------------------ hello
HELLO_RATE=—
if runs s1; then
    log "baseline: GET /__bench/hello"
    wrk_run hello "$APP/__bench/hello"
    HELLO_CAP=$(capacity hello)
    HELLO_RATE=$((HELLO_CAP / 2))
    oha_run hello "$HELLO_RATE" "$APP/__bench/hello"
fi

# ------------------------------------------------------------------ S1 target, Redis baseline
log "free slots of every doctor (warms the schedule cache)"
python3 bench/bench.py slots --base "$APP" --days 14 --out "$RAW/slots.json" >&2
read -r S1_SPEC S1_BRANCH S1_DATE < <(python3 -c '
import json, sys
g = json.load(open(sys.argv[1]))["groups"][0][0]
print(g["specialist_id"], g["branch_id"], g["date"])' "$RAW/slots.json")
S1_URL="$APP/api/v1/specialist/schedule?specialist_id=$S1_SPEC&branch_id=$S1_BRANCH&date_from=$S1_DATE"
curl -fsS "$S1_URL" >/dev/null
curl -fsS "$S1_URL" >"$RAW/s1.body.json"
grep -q '"source":"cache"' "$RAW/s1.body.json" || die "S1 is not served from the cache: $(head -c 300 "$RAW/s1.body.json")"
PAYLOAD=$(redis-cli -h 127.0.0.1 --raw strlen "${PREFIX}sched:$S1_SPEC:$S1_BRANCH:$S1_DATE")
[ "${PAYLOAD:-0}" -gt 0 ] || die "no cached schedule day in Redis for S1"

S1_RATE=—
if runs s1; then
    log "baseline: redis-benchmark GET of $PAYLOAD bytes"
    # `-t set,get`: the SET fills the key so that each GET returns the payload (a GET of a
    # missing key would return nil). Database 9, so no key lands in the app's keyspace.
    "${PIN_GEN[@]}" redis-benchmark -h 127.0.0.1 -p 6379 --dbnum 9 -t set,get -d "$PAYLOAD" \
        -n 200000 -c 50 --csv >"$RAW/redis.csv"
    grep '"GET"' "$RAW/redis.csv" >&2

    # -------------------------------------------------------------- S1
    log "S1: GET /api/v1/specialist/schedule (cache hit), with PostgreSQL queries per request"
    wrk_run s1 "$S1_URL" settle
    S1_RATE=$(($(capacity s1) / 2))
    oha_run s1 "$S1_RATE" "$S1_URL"
fi

# ------------------------------------------------------------------ HTML pages
# Before the MIS gets its latency: the doctor page shows the week of S1's doctor, whose days
# the slot collection cached (a day it did not is fetched once, by the status check below).
DOCTOR_PATH="/doctors/$S1_SPEC"
DOCTORS_RATE=— DOCTOR_RATE=—
if runs all; then
    for page in /doctors "$DOCTOR_PATH"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$APP$page")
        [ "$code" = 200 ] || die "GET $page answers $code, not 200 (a redirect would measure nothing)"
    done
    log "the doctor list page: GET /doctors (HTML)"
    wrk_run doctors "$APP/doctors"
    DOCTORS_RATE=$(($(capacity doctors) / 2))
    oha_run doctors "$DOCTORS_RATE" "$APP/doctors"

    log "the doctor page: GET $DOCTOR_PATH (HTML)"
    wrk_run doctor "$APP$DOCTOR_PATH"
    DOCTOR_RATE=$(($(capacity doctor) / 2))
    oha_run doctor "$DOCTOR_RATE" "$APP$DOCTOR_PATH"
fi

# ------------------------------------------------------------------ MIS emulator alone
MIS_RATE=—
if runs s5; then
    log "baseline: the MIS emulator alone, SCHEDULE_REC_RESERVE, D = $D ms"
    curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"latency_ms\": $D}" \
        "$MIS/_emulator/faults" >/dev/null
    read -r DOC_MIS BRANCH_MIS < <(psql "$PG_URL" -Atc \
        "select s.mis_id || ' ' || b.mis_id from specialists s, branches b where s.id = $S1_SPEC and b.id = $S1_BRANCH")
    # A reserve of an interval that does not exist (SCHEDIDENT 1, PCODE 1): the emulator parses
    # it, takes its write lock and refuses, so the world does not change however often it is sent.
    cat >"$RAW/mis_reserve.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<WEB_SCHEDULE_REC_RESERVE xmlns="http://sdsys.ru/"><MSH><MSH.7><TS.1>$(date -u +%Y%m%d%H%M%S)</TS.1></MSH.7><MSH.9><MSG.1>WEB</MSG.1><MSG.2>SCHEDULE_REC_RESERVE</MSG.2></MSH.9><MSH.10>bench</MSH.10><MSH.18>UTF-8</MSH.18><MSH.99>$BRANCH_MIS</MSH.99></MSH><SCHEDULE_REC_RESERVE_IN><DCODE>$DOC_MIS</DCODE><WORKDATE>${S1_DATE//-/}</WORKDATE><BHOUR>3</BHOUR><BMIN>0</BMIN><FHOUR>3</FHOUR><FMIN>30</FMIN><SCHEDIDENT>1</SCHEDIDENT><PCODE>1</PCODE><ONLINETYPE>0</ONLINETYPE><SCHLIST/></SCHEDULE_REC_RESERVE_IN></WEB_SCHEDULE_REC_RESERVE>
EOF
    curl -fsS -X POST -H 'Content-Type: text/xml; charset=utf-8' --data-binary "@$RAW/mis_reserve.xml" \
        "$MIS/api/xml" >"$RAW/mis_reserve.answer.xml"
    grep -q 'SCHEDULE_REC_RESERVE_OUT' "$RAW/mis_reserve.answer.xml" \
        || die "the emulator did not answer the reserve: $(head -c 300 "$RAW/mis_reserve.answer.xml")"
    MIS_RATE=100
    "${PIN_GEN[@]}" oha -z "${DURATION}s" -c 16 -q "$MIS_RATE" --latency-correction --no-tui \
        --output-format json -m POST -H 'Content-Type: text/xml; charset=utf-8' \
        -D "$RAW/mis_reserve.xml" "$MIS/api/xml" >"$RAW/mis_reserve.oha.json"
    python3 bench/bench.py oha-line "$RAW/mis_reserve.oha.json" "MIS reserve" >&2
fi

# ------------------------------------------------------------------ S5
S5_COUNT=$((S5_RATE * S5_SECONDS))
# Booking phones: the open loop's are 0 … S5_COUNT − 1, the sweep's 1 000 000 + S5_COUNT on,
# S5_CLOSED a step (`book` numbers them +7999NNNNNNN), each booked once.
CLOSED_BASE=$((1000000 + S5_COUNT))
CLOSED_TOTAL=$((S5_CLOSED * $(wc -w <<<"$S5_STEPS")))
TOKENS=$RAW/s5_tokens.json
# A phone token lives 15 minutes (PROOF_TTL in src/domain/phones.rs; no setting), and a run
# may not start unless its tokens outlive it by TOKEN_MARGIN seconds.
TOKEN_MARGIN=180
TOKENS_FETCHED=0
tokens() { # PHONE_BASE COUNT: a phone token for each of those booking phones in $TOKENS, valid
    # long enough for a run (asks the codes, reads them from the SMS log, confirms them; keeps
    # the ones already there). Setup, not measured. Adds how many it obtained to TOKENS_FETCHED.
    local got
    got=$("${PIN_GEN[@]}" python3 bench/bench.py tokens --base "$APP" --sms-log "$RAW/serve.log" \
        --phone-base "$1" --count "$2" --valid-for "$((TOKEN_MARGIN + S5_SECONDS + 60))" \
        --out "$TOKENS")
    TOKENS_FETCHED=$((TOKENS_FETCHED + got))
}
log "S5: phone tokens for $S5_COUNT + $CLOSED_TOTAL booking phones (setup, not measured)"
if runs s5; then tokens 0 "$S5_COUNT"; fi
if runs all; then tokens "$CLOSED_BASE" "$CLOSED_TOTAL"; fi
# The token requests' PostgreSQL counts are reported up to 10 s late: let them land before S5.
sleep "$PG_SETTLE"

if runs s5; then
    log "S5: the driver's own floor (a body refused with 422, same open loop at $S5_RATE/s)"
    "${PIN_GEN[@]}" python3 bench/bench.py floor --base "$APP" --count "$S5_COUNT" --rate "$S5_RATE" \
        --out "$RAW/s5_floor.json" >&2
    # The same refused body from oha, the client the MIS's own time is measured with: the two
    # floors' difference is the Python driver's own cost per request, which S5's p50 pays and
    # the MIS baseline does not.
    log "S5: the same floor from oha ($S5_COUNT requests at $S5_RATE/s)"
    "${PIN_GEN[@]}" oha -n "$S5_COUNT" -c 16 -q "$S5_RATE" --latency-correction --no-tui \
        --output-format json -m POST -H 'Content-Type: application/json' -d '{}' \
        "$APP/api/v1/specialist/anonymous-reserve" >"$RAW/s5_floor.oha.json"
    python3 bench/bench.py oha-line "$RAW/s5_floor.oha.json" "floor (oha)" >&2

    log "S5: anonymous booking, open loop: $S5_COUNT distinct slots at $S5_RATE/s"
    mis_calls mis_calls0
    python3 bench/bench.py steps --base "$APP" --out "$RAW/s5_open.steps0.json"
    cpu s5_open.cpu0
    "${PIN_GEN[@]}" python3 bench/bench.py book --base "$APP" --slots "$RAW/slots.json" \
        --exclude "$S1_SPEC:$S1_BRANCH:$S1_DATE" --count "$S5_COUNT" --rate "$S5_RATE" \
        --phone-base 0 --tokens "$TOKENS" --token-margin "$TOKEN_MARGIN" --out "$RAW/s5_open.json" >&2
    cpu s5_open.cpu1
    mis_calls mis_calls1
    python3 bench/bench.py steps --base "$APP" --out "$RAW/s5_open.steps1.json"
fi

# Capacity: closed loops with more and more workers, until doubling them grows the rate by
# less than 10 %; the report says which process was the limit at that point (the app, the
# driver, the MIS emulator, PostgreSQL, or none: a wait).
if runs all; then
    log "S5: anonymous booking, closed loop: $S5_CLOSED bookings per step, workers $S5_STEPS"
    SKIP=$S5_COUNT
    PREV_RPS=0
    for W in $S5_STEPS; do
        NAME=s5_closed_w$W
        # The tokens were obtained before the open loop; a sweep slow enough to come near their
        # 15 minutes gets this step's anew here (and lets PostgreSQL's counters settle again).
        FETCHED_BEFORE=$TOKENS_FETCHED
        tokens $((1000000 + SKIP)) "$S5_CLOSED"
        [ "$TOKENS_FETCHED" = "$FETCHED_BEFORE" ] || sleep "$PG_SETTLE"
        mis_calls "$NAME.calls0"
        cpu "$NAME.cpu0"
        "${PIN_GEN[@]}" python3 bench/bench.py book --base "$APP" --slots "$RAW/slots.json" \
            --exclude "$S1_SPEC:$S1_BRANCH:$S1_DATE" --skip "$SKIP" --count "$S5_CLOSED" \
            --concurrency "$W" --phone-base $((1000000 + SKIP)) --tokens "$TOKENS" \
            --token-margin "$TOKEN_MARGIN" --out "$RAW/$NAME.json" >&2
        cpu "$NAME.cpu1"
        mis_calls "$NAME.calls1"
        SKIP=$((SKIP + S5_CLOSED))
        RPS=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rps"])' "$RAW/$NAME.json")
        if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 1.10 * float(sys.argv[2]) else 1)' \
            "$RPS" "$PREV_RPS"; then
            break
        fi
        PREV_RPS=$RPS
    done
fi

# Every booking has its SMS row (C.4: SMS outbox rows = successful bookings; the phone codes,
# kind `code`, are counted apart).
sleep 1
OUTBOX=$(psql "$PG_URL" -Atc "select (select count(*) from records) || ' records, ' || (select count(*) from sms_outbox where kind <> 'code') || ' SMS outbox rows besides the ' || (select count(*) from sms_outbox where kind = 'code') || ' phone codes'")

# ------------------------------------------------------------------ report
log "report"
python3 - "$RAW/facts.json" <<EOF
import json, sys
facts = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "commit": "${BENCH_BIN:+the binary $BENCH_BIN; checkout }$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+dirty')",
    "nproc": "$(nproc)",
    "cpu": """$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)""".strip() or "unknown CPU",
    "kernel": "$(uname -r)",
    "rustc": "$(rustc --version)",
    "oha": "$(oha --version | head -1)",
    "wrk": "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')",
    "redis": "Redis $(redis-cli -h 127.0.0.1 info server | tr -d '\r' | awk -F: '$1=="redis_version"{print $2}')",
    "postgres": "$(psql "$PG_ADMIN" -Atc 'show server_version')",
    "shared_buffers": "$(psql "$PG_ADMIN" -Atc 'show shared_buffers')",
    "max_connections": "$(psql "$PG_ADMIN" -Atc 'show max_connections')",
    "fsync": "$(psql "$PG_ADMIN" -Atc 'show fsync')",
    "pool_size": "$POOL_SIZE",
    "loadavg": "$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end",
    "pinning": "$PINNING",
    "pinned": "$PINNED",
    "pg_settle": "$PG_SETTLE",
    "s5_steps": "$S5_STEPS",
    "doctor_path": "$DOCTOR_PATH",
    "doctors_rate": "$DOCTORS_RATE",
    "doctor_rate": "$DOCTOR_RATE",
    "duration": "$DURATION",
    "warmup": "$WARMUP",
    "hello_rate": "$HELLO_RATE",
    "s1_rate": "$S1_RATE",
    "mis_rate": "$MIS_RATE",
    "mis_latency_ms": "$D",
    "payload_bytes": "$PAYLOAD",
    "s1_target": "S1 reads specialist $S1_SPEC in branch $S1_BRANCH on $S1_DATE (one cached day, $PAYLOAD bytes in Redis); the handler resolves the doctor from the in-memory directory snapshot and answers a hit from the in-process cache, so a memory hit is meant to need no PostgreSQL query and no Redis call.",
    "tokens": "S5's bookings each present the phone token of their own phone and both consents: $TOKENS_FETCHED tokens were obtained before the S5 runs (code asked, read from the SMS log of SMS_PROVIDER=log, confirmed; not measured, and followed by a wait of $PG_SETTLE s so that their PostgreSQL counts stay out of the S5 rows). VERIFY_LIMIT_PER_IP_HOUR and VERIFY_LIMIT_PER_PHONE_HOUR are 10^9 for the bench, like the booking and schedule limits.",
    "outbox": "After the run: $OUTBOX (emulated clinic at scale $SCALE; SCHEDULE_CACHE_TTL_SECONDS=3600 so S1 stays a cache hit).",
}
json.dump(facts, open(sys.argv[1], "w"), indent=1)
EOF
python3 bench/bench.py report --raw "$RAW" --out "$OUT/report.md"
echo "saved: $OUT/report.md (raw output in $RAW/)"
