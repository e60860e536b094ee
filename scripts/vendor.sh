#!/usr/bin/env bash
# Refresh the vendored browser assets of the screens from the npm registry (`make vendor`).
# Pinned versions: htmx 2 (the SSE extension 2.x needs htmx 2; npm's `latest` is 4.x, with
# another SSE interface). Nothing is fetched at run time: the files are committed.
set -euo pipefail
HTMX=2.0.11
HTMX_SSE=2.2.4
UPLOT=1.6.32
DEST="$(cd "$(dirname "$0")/.." && pwd)/src/orderflow/apps/static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund --silent \
  "htmx.org@$HTMX" "htmx-ext-sse@$HTMX_SSE" "uplot@$UPLOT"
rm -rf "$DEST"
mkdir -p "$DEST/htmx" "$DEST/htmx-ext-sse" "$DEST/uplot"
cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE "$DEST/htmx/"
cp node_modules/htmx-ext-sse/dist/sse.min.js node_modules/htmx-ext-sse/LICENSE "$DEST/htmx-ext-sse/"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css \
  node_modules/uplot/LICENSE "$DEST/uplot/"
cat > "$DEST/VERSIONS" <<VERSIONS
htmx.org $HTMX
htmx-ext-sse $HTMX_SSE
uplot $UPLOT
VERSIONS
echo "vendored into $DEST:"
cat "$DEST/VERSIONS"
