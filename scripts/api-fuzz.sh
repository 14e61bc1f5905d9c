#!/usr/bin/env bash
# Fuzzes the JSON API with schemathesis against a running demo instance: no 5xx, no answer
# that breaks the OpenAPI document, negative inputs rejected. Before that, the typed TypeScript
# client's example (clients/ts/example/book.ts) books and cancels a visit on the same instance.
# Used by `just api-fuzz` and CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port="${API_FUZZ_PORT:-18099}"
base="http://127.0.0.1:$port"
examples="${API_FUZZ_EXAMPLES:-30}"

if ! st --version >/dev/null 2>&1; then
    echo "api-fuzz: installing schemathesis"
    python3 -m pip install --quiet schemathesis
    command -v pyenv >/dev/null && pyenv rehash || true
fi

cargo build --quiet
log="$(mktemp)"
# Its own database, new on every run: the demo's MIS emulator starts empty with each server, so
# patient cards (users.mis_pcode) kept from an earlier run are unknown to it and a booking would
# fail with "Пациент не найден"; the day's bookings and SMS of earlier runs would count too.
psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qc \
    'DROP DATABASE IF EXISTS sovamed_api_fuzz WITH (FORCE)' ||
    { echo "api-fuzz: could not drop the database sovamed_api_fuzz (psql as postgres on 127.0.0.1)" >&2; exit 1; }
# Its own Redis prefix; limits high enough for a fuzzer's request rate.
DATABASE_URL="postgres://postgres@127.0.0.1:5432/sovamed_api_fuzz" REDIS_PREFIX="api-fuzz:$$:" \
    RESERVE_LIMIT_PER_IP_HOUR=1000000 RESERVE_LIMIT_PER_PHONE_HOUR=1000000 \
    LOGIN_LIMIT_PER_IP=1000000 LOGIN_LIMIT_PER_ACCOUNT=1000000 SYNC_INTERVAL_MINUTES=0 \
    VERIFY_LIMIT_PER_IP_HOUR=1000000 VERIFY_LIMIT_PER_PHONE_HOUR=1000000 \
    SMS_LIMIT_PER_PHONE_DAY=1000000 MAX_ACTIVE_RECORDS_PER_PATIENT=1000000 \
    BOOKING_LIMIT_PER_PATIENT_DAY=1000000 \
    ./target/debug/sovamed serve --demo --bind "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 60); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1 && grep -q "serving on" "$log"; then break; fi
    sleep 1
done
curl -fsS "$base/readyz" >/dev/null || { echo "api-fuzz: the server did not start" >&2; cat "$log" >&2; exit 1; }

# The TypeScript client against the live API: logs in as the demo patient, reads a schedule,
# books the first free slot and cancels it (scripts/ts-client.sh compiles and runs it).
./scripts/ts-client.sh run-example "$base"

token="$(curl -fsS -X POST "$base/api/v1/user/login" -H 'content-type: application/json' \
    -d '{"email":"patient@demo.sovamed.ru","password":"sova-patient-demo"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"

# Every check, positive_data_acceptance included; scripts/schemathesis.toml lists the operations
# where it is off, and why (rules a JSON Schema cannot carry).
st --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
    -H "Authorization: Bearer $token" \
    -n "$examples" --request-timeout 10 --no-color
