#!/usr/bin/env bash
# Runs the local emulator with demo traffic (unless NO_DEVSTACK=1), a Celery worker
# and the web server together, each logging to var/. Once the web server answers it prints
# where to go and how to log in, last. Ctrl-C (or SIGTERM) stops all of them within 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
DEVSTACK_PORT=${DEVSTACK_PORT:-5000}
URL="http://127.0.0.1:${PORT}/"
mkdir -p var
DEVSTACK_LOG=var/devstack.log
WORKER_LOG=var/worker.log
SERVER_LOG=var/server.log
BEAT_LOG=var/beat.log

# Each child runs in its own process group, so that stopping one stops all it started, and
# so that Ctrl-C reaches this script only: it stops the children itself, in order.
set -m
pids=()
stop() {
  trap - INT TERM EXIT
  # Job control would report every stopped child ("Terminated ...").
  exec 2>/dev/null
  echo
  echo "Stopping..."
  local pid alive deadline
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" || true; done
  # 3.5 s for a clean stop (the Celery worker's warm shutdown often takes longer when idle),
  # then whatever is left is killed: everything is gone within 5 s.
  deadline=$(( ${EPOCHREALTIME/./} + 3500000 ))
  while (( ${EPOCHREALTIME/./} < deadline )); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" || true; done
  wait || true
}
trap stop INT TERM EXIT

# Exits 0 once anything answers HTTP at $1 (a 503 from /healthz is an answer too).
answers() {
  "$PY" - "$1" <<'PYTHON' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PYTHON
}

if [ -z "${NO_DEVSTACK:-}" ]; then
  # The dashboard talks to the emulator exactly as it would to AWS.
  export AWS_ENDPOINT_URL="http://127.0.0.1:${DEVSTACK_PORT}"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
  : > "$DEVSTACK_LOG"
  "$PY" manage.py devstack --port "$DEVSTACK_PORT" > "$DEVSTACK_LOG" 2>&1 &
  pids+=($!)
  echo "Starting the AWS emulator and provisioning the event system (log: $DEVSTACK_LOG)..."
  # Ready once it has provisioned the topology and prints its endpoint.
  for _ in $(seq 1 240); do
    grep -q "moto server on" "$DEVSTACK_LOG" && break
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
      echo "devstack failed to start:"; cat "$DEVSTACK_LOG"; exit 1
    fi
    sleep 0.5
  done
fi

logins=$("$PY" manage.py createdemousers --no-color)
password=$(sed -n 's/^Password for oncall and viewer ([^)]*): //p' <<< "$logins")

echo "Starting the Celery worker (log: $WORKER_LOG) and the web server (log: $SERVER_LOG)..."
"$PY" -m celery -A dashboard worker --pool=solo --loglevel=INFO > "$WORKER_LOG" 2>&1 &
pids+=($!)
# Beat runs the sweeper (re-enqueues stuck operations, resumes abandoned ones); its
# schedule file lives under var/ (CELERY_BEAT_SCHEDULE_FILENAME).
"$PY" -m celery -A dashboard beat --loglevel=INFO > "$BEAT_LOG" 2>&1 &
pids+=($!)
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload > "$SERVER_LOG" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
  answers "${URL}healthz" && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "the web server failed to start:"; tail -n 20 "$SERVER_LOG"; exit 1
  fi
  sleep 0.5
done

# Errors of the worker and the web server still show up below the box; the rest is in var/.
(tail -n 0 -F "$WORKER_LOG" "$BEAT_LOG" "$SERVER_LOG" 2>/dev/null | grep --line-buffered -E "ERROR|CRITICAL|Traceback") &
pids+=($!)

logs="${WORKER_LOG}, ${BEAT_LOG}, ${SERVER_LOG}"
lines=(
  "eventops is running:  ${URL}"
  ""
  "Log in as  oncall  (operator: may redrive and replay)"
  "       or  viewer  (read only)"
  "password:  ${password:-see the output of manage.py createdemousers}"
  ""
)
if [ -z "${NO_DEVSTACK:-}" ]; then
  lines+=("AWS emulator (moto): ${AWS_ENDPOINT_URL}, with demo traffic")
  logs="${DEVSTACK_LOG}, ${logs}"
fi
lines+=("logs: ${logs}" "(their errors also appear below)" "" "Ctrl-C stops everything.")
width=0
for line in "${lines[@]}"; do (( ${#line} > width )) && width=${#line}; done
border=$(printf '%*s' $((width + 4)) '' | tr ' ' '-')
echo
echo "+${border}+"
for line in "${lines[@]}"; do printf '|  %-*s  |\n' "$width" "$line"; done
echo "+${border}+"
echo

wait -n "${pids[@]}"
