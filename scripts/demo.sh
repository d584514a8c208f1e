#!/usr/bin/env bash
# Runs the local emulator with demo traffic (unless NO_DEVSTACK=1), a Celery worker
# and the web server together. Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
DEVSTACK_PORT=${DEVSTACK_PORT:-5000}

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

if [ -z "${NO_DEVSTACK:-}" ]; then
  # The dashboard talks to the emulator exactly as it would to AWS.
  export AWS_ENDPOINT_URL="http://127.0.0.1:${DEVSTACK_PORT}"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
  mkdir -p var
  log=var/devstack.log
  : > "$log"
  "$PY" manage.py devstack --port "$DEVSTACK_PORT" > "$log" 2>&1 &
  pids+=($!)
  echo "Starting the AWS emulator and provisioning the event system (log: $log)..."
  # Ready once it has provisioned the topology and prints its endpoint.
  for _ in $(seq 1 240); do
    grep -q "moto server on" "$log" && break
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
      echo "devstack failed to start:"; cat "$log"; exit 1
    fi
    sleep 0.5
  done
fi

logins=$("$PY" manage.py createdemousers)

"$PY" -m celery -A dashboard worker --pool=solo --loglevel=INFO &
pids+=($!)
# Beat runs the sweeper (re-enqueues stuck operations, resumes abandoned ones); its
# schedule file lives under var/ (CELERY_BEAT_SCHEDULE_FILENAME).
"$PY" -m celery -A dashboard beat --loglevel=INFO &
pids+=($!)
"$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)

sleep 2
echo
echo "eventops is running: http://127.0.0.1:${PORT}/"
if [ -z "${NO_DEVSTACK:-}" ]; then
  echo "AWS emulator (moto): ${AWS_ENDPOINT_URL}, with demo traffic; status lines in var/devstack.log"
fi
echo "$logins"
echo "Log in as oncall (operator) or viewer. Ctrl-C stops everything."
wait -n "${pids[@]}"
