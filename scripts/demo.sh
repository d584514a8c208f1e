#!/usr/bin/env bash
# Runs the local emulator with demo traffic (unless NO_DEVSTACK=1), a Celery worker
# and the web server together, each logging to var/. Once the web server answers it prints
# where to go and how to log in, last. Ctrl-C (or SIGTERM) stops all of them within 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
DEVSTACK_PORT=${DEVSTACK_PORT:-5000}
# A second devstack in another Region: the dashboard gets two environments from the start.
DEVSTACK2_PORT=${DEVSTACK2_PORT:-5001}
DEVSTACK2_REGION=${DEVSTACK2_REGION:-eu-west-1}
URL="http://127.0.0.1:${PORT}/"
mkdir -p var
DEVSTACK_LOG=var/devstack.log
DEVSTACK2_LOG=var/devstack-${DEVSTACK2_REGION:-eu-west-1}.log
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
  # The demo is local development: DEBUG on (settings.py leaves it off unless set).
  export DEBUG=${DEBUG:-true}
  # The dashboard talks to the emulator exactly as it would to AWS.
  export AWS_ENDPOINT_URL="http://127.0.0.1:${DEVSTACK_PORT}"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
  : > "$DEVSTACK_LOG"
  : > "$DEVSTACK2_LOG"
  "$PY" manage.py devstack --port "$DEVSTACK_PORT" > "$DEVSTACK_LOG" 2>&1 &
  pids+=($!)
  first=$!
  "$PY" manage.py devstack --port "$DEVSTACK2_PORT" --region "$DEVSTACK2_REGION" --rate 1 \
    > "$DEVSTACK2_LOG" 2>&1 &
  pids+=($!)
  second=$!
  echo "Starting two AWS emulators (us-east-1 and ${DEVSTACK2_REGION}) and provisioning the event" \
    "system in each (logs: $DEVSTACK_LOG, $DEVSTACK2_LOG)..."
  # Ready once each has provisioned the topology and prints its endpoint.
  for _ in $(seq 1 240); do
    grep -q "moto server on" "$DEVSTACK_LOG" && grep -q "moto server on" "$DEVSTACK2_LOG" && break
    for pid_log in "$first:$DEVSTACK_LOG" "$second:$DEVSTACK2_LOG"; do
      if ! kill -0 "${pid_log%%:*}" 2>/dev/null; then
        echo "devstack failed to start:"; cat "${pid_log#*:}"; exit 1
      fi
    done
    sleep 0.5
  done
  # The two environments of the dashboard (operations/environments.py), one per emulator.
  export EVENTOPS_ENVIRONMENTS_FILE=var/environments.toml
  cat > "$EVENTOPS_ENVIRONMENTS_FILE" <<TOML
# Written by make demo (scripts/demo.sh): one environment per local emulator.
[environments.demo]
region = "us-east-1"
label = "Demo (us-east-1)"
endpoint_url = "http://127.0.0.1:${DEVSTACK_PORT}"
color = "teal"

[environments.demo-eu]
region = "${DEVSTACK2_REGION}"
label = "Demo (${DEVSTACK2_REGION})"
endpoint_url = "http://127.0.0.1:${DEVSTACK2_PORT}"
color = "indigo"
TOML
fi

# Demo users (with a printed password) only for the demo: make serve is the path to a
# real account, where people sign in with their own accounts or single sign-on.
password=""
if [ -z "${NO_DEVSTACK:-}" ]; then
  logins=$("$PY" manage.py createdemousers --no-color)
  password=$(sed -n 's/^Password for oncall and viewer ([^)]*): //p' <<< "$logins")
fi

echo "Starting the Celery worker (log: $WORKER_LOG) and the web server (log: $SERVER_LOG)..."
"$PY" -m celery -A dashboard worker --pool=solo --loglevel=INFO > "$WORKER_LOG" 2>&1 &
pids+=($!)
# Beat runs the sweeper (re-enqueues stuck operations, resumes abandoned ones); its
# schedule file lives under var/ (CELERY_BEAT_SCHEDULE_FILENAME).
"$PY" -m celery -A dashboard beat --loglevel=INFO > "$BEAT_LOG" 2>&1 &
pids+=($!)
# --insecure: the development server serves the static files with DEBUG off too (make serve).
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload --insecure > "$SERVER_LOG" 2>&1 &
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
lines=("eventops is running:  ${URL}" "")
if [ -z "${NO_DEVSTACK:-}" ]; then
  lines+=("Log in as  oncall  (operator: may redrive and replay)"
          "       or  viewer  (read only)"
          "password:  ${password:-see the output of manage.py createdemousers}"
          "")
else
  lines+=("Sign in with single sign-on (OIDC_*) or an account made with"
          "  manage.py createsuperuser (no demo users here)" "")
fi
if [ -z "${NO_DEVSTACK:-}" ]; then
  lines+=("AWS emulators (moto): ${AWS_ENDPOINT_URL} (us-east-1) and"
          "  http://127.0.0.1:${DEVSTACK2_PORT} (${DEVSTACK2_REGION}), with demo traffic;"
          "  two environments in ${EVENTOPS_ENVIRONMENTS_FILE}")
  logs="${DEVSTACK_LOG}, ${DEVSTACK2_LOG}, ${logs}"
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
