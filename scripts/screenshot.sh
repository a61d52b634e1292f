#!/usr/bin/env bash
# Take a screenshot of the app on a private virtual X display.
#
#   scripts/screenshot.sh [OUT.png] [-- COMMAND ARGS...]
#
# OUT.png defaults to shots/main.png (shots/ is gitignored); COMMAND defaults to
# .venv/bin/rlhf-explorer. Environment: WINDOW_TITLE (window to wait for, default
# "RLHF Explorer"), SCREEN (default 1280x800x24), SETTLE_S (seconds to let it paint, default 1),
# TIMEOUT_S (seconds to wait for the window, default 30).
set -euo pipefail

cd "$(dirname "$0")/.."

out="shots/main.png"
if [[ $# -gt 0 && "$1" != "--" ]]; then
    out="$1"
    shift
fi
if [[ $# -gt 0 && "$1" == "--" ]]; then
    shift
fi
if [[ $# -gt 0 ]]; then
    cmd=("$@")
else
    cmd=(.venv/bin/rlhf-explorer)
fi
title="${WINDOW_TITLE:-RLHF Explorer}"
screen="${SCREEN:-1280x800x24}"
settle="${SETTLE_S:-1}"
timeout="${TIMEOUT_S:-30}"

missing=()
for tool in Xvfb import xwininfo; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "missing: ${missing[*]}" >&2
    echo "install with: apt-get install -y xvfb imagemagick x11-utils" \
        "libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0" >&2
    exit 2
fi

xvfb_pid=""
app_pid=""
tmp="$(mktemp -d)"
cleanup() {
    # The app first, so it does not log a lost-display error when Xvfb goes away.
    for pid in "$app_pid" "$xvfb_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# -displayfd makes Xvfb pick a free display number itself and report it: no races with
# another X server or another run of this script.
Xvfb -displayfd 3 -screen 0 "$screen" -nolisten tcp 3>"$tmp/display" 2>"$tmp/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do
    [[ -s "$tmp/display" ]] && break
    sleep 0.1
done
if [[ ! -s "$tmp/display" ]]; then
    echo "Xvfb did not start:" >&2
    cat "$tmp/xvfb.log" >&2
    exit 1
fi
export DISPLAY=":$(head -n1 "$tmp/display")"
unset WAYLAND_DISPLAY
export QT_QPA_PLATFORM=xcb

"${cmd[@]}" >"$tmp/app.log" 2>&1 &
app_pid=$!

deadline=$((SECONDS + timeout))
until xwininfo -root -tree 2>/dev/null | grep -qF "\"$title\""; do
    if ! kill -0 "$app_pid" 2>/dev/null; then
        echo "the app exited before showing \"$title\":" >&2
        cat "$tmp/app.log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "no window titled \"$title\" after ${timeout}s; app output:" >&2
        cat "$tmp/app.log" >&2
        exit 1
    fi
    sleep 0.2
done
sleep "$settle"

mkdir -p "$(dirname "$out")"
import -window root "$out"
echo "saved $out (display $DISPLAY)"
if [[ -s "$tmp/app.log" ]]; then
    echo "app output:"
    sed 's/^/  /' "$tmp/app.log"
fi
