#!/bin/sh
# Refresh the vendored uPlot (the chart library of the queue pages) from the npm registry.
# Usage: scripts/vendor_uplot.sh [version]   (default: the pinned version below)
set -eu

VERSION="${1:-1.6.32}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$HERE/static/vendor/uplot"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "uplot@$VERSION" >/dev/null)
tar -xzf "$WORK/uplot-$VERSION.tgz" -C "$WORK"

mkdir -p "$DEST"
cp "$WORK/package/dist/uPlot.iife.min.js" "$DEST/uPlot.iife.min.js"
cp "$WORK/package/dist/uPlot.min.css" "$DEST/uPlot.min.css"
cp "$WORK/package/LICENSE" "$DEST/LICENSE"
echo "$VERSION" > "$DEST/VERSION"
echo "uPlot $VERSION vendored into static/vendor/uplot/"
