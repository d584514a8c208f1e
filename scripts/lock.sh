#!/usr/bin/env bash
# Compile the lock files in requirements/ from pyproject.toml (see requirements/README.md).
#   scripts/lock.sh            regenerate, keeping every pin that still satisfies pyproject.toml
#   scripts/lock.sh --check    fail when a committed lock is stale against pyproject.toml
#   UPGRADE="moto boto3" scripts/lock.sh   upgrade those packages (UPGRADE=all: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
check=false
[ "${1:-}" = "--check" ] && check=true

common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command "make lock")
upgrade=()
if [ "${UPGRADE:-}" = "all" ]; then
  upgrade=(--upgrade)
elif [ -n "${UPGRADE:-}" ]; then
  for name in $UPGRADE; do upgrade+=(--upgrade-package "$name"); done
fi

UV=$(realpath "$UV")
repo=$PWD
if $check; then
  # Compile a copy: uv keeps the existing pins as preferences, so a newer release on PyPI
  # does not make the lock "stale"; only a change of pyproject.toml does.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir "$work/requirements"
  cp pyproject.toml README.md "$work/"
  cp requirements/*.txt requirements/*.in "$work/requirements/"
  cd "$work"
fi

# dev.txt is the superset; demo.txt and prod.txt are constrained to its versions.
"$UV" pip compile pyproject.toml requirements/build.in --extra dev --extra infra \
  "${common[@]}" "${upgrade[@]}" -o requirements/dev.txt
"$UV" pip compile pyproject.toml requirements/build.in --extra devstack \
  -c requirements/dev.txt "${common[@]}" -o requirements/demo.txt
"$UV" pip compile pyproject.toml -c requirements/dev.txt "${common[@]}" -o requirements/prod.txt

if $check; then
  stale=0
  for f in dev demo prod; do
    if ! diff -u "$repo/requirements/$f.txt" "requirements/$f.txt" > "$f.diff"; then
      echo "requirements/$f.txt is stale against pyproject.toml; run 'make lock' and commit it:"
      head -40 "$f.diff"
      stale=1
    fi
  done
  [ $stale = 0 ] && echo "locks are up to date with pyproject.toml"
  exit $stale
fi
