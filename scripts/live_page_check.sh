#!/usr/bin/env bash
# The admin live page in headless Chromium against a running gateway under load: loads
# without console errors, shows the pool's endpoints, and its numbers change while load
# runs. Keeps a screenshot.
#   bash scripts/live_page_check.sh [BIN] [ARTIFACT_DIR]
# (ctest: live_page_chromium; BIN defaults to build/infergate, the screenshot goes to
# ARTIFACT_DIR/live_page.png, default build/artifacts.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=$(realpath "${1:-$root/build/infergate}")
ARTIFACTS=${2:-$root/build/artifacts}
CHROMIUM=${CHROMIUM:-chromium}
# shellcheck source=scripts/observe_stack.sh
source "$here/observe_stack.sh"
stack_require "$BIN" "$CHROMIUM" node python3
mkdir -p "$ARTIFACTS"
stack_workdir livepage
stack_start "$BIN"
stack_load 20

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium" --remote-debugging-port=0 about:blank \
  >"$work/chromium.out" 2>"$work/chromium.err" &
pids+=($!)
line=$(wait_for_line "$work/chromium.err" "DevTools listening on" 400)
ws=${line#*DevTools listening on }

status=0
node --experimental-websocket --no-warnings "$root/tests/observability/live_page_cdp.mjs" \
  "$ws" "http://$ADDR:$ADMIN_PORT/" "$ARTIFACTS/live_page.png" \
  "${SIM_ADDRS[0]}:$SIM_PORT" "${SIM_ADDRS[1]}:$SIM_PORT" || status=$?
echo "screenshot: $ARTIFACTS/live_page.png"
if [ "$status" != 0 ]; then
  echo "--- gateway stderr" >&2; tail -20 "$work/gw.err" >&2 || true
  echo "--- load" >&2; tail -5 "$work/load.out" >&2 || true
fi
exit "$status"
