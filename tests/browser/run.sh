#!/usr/bin/env bash
# Browser test: a visitor chats in the widget on the demo shop page and an agent answers
# from the console, in Debian's headless Chromium driven by playwright-core.
# Screenshots go to tests/browser/screenshots/ (or $SCREENSHOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

# Debian's Chromium only; never a browser downloaded from elsewhere.
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || { echo "node is needed (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent playwright-core)
fi

bin="$target/release/frontdesk"
[ -x "$bin" ] || (cd "$root" && cargo build --release --bin frontdesk)

data="$(mktemp -d)"
log="$data/server.log"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
# Starts `serve` (its arguments after the log file) in the background, from the folder
# given first, and waits for it to listen: sets server_pid and url.
start_server() {
  local dir="$1" log="$2"; shift 2
  (cd "$dir" && exec "$bin" serve --bind 127.0.0.1:0 "$@") 2>"$log" &
  server_pid=$!
  url=""
  for _ in $(seq 1 600); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's/listening on //')" || true
    [ -n "$url" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "the server exited" >&2; exit 1; }
    sleep 0.5
  done
  cat "$log" >&2; echo "the server did not start" >&2; exit 1
}

# From an empty folder: the installed binary needs nothing from the repository but a config.
start_server "$data" "$log" --data "$data/store" --config "$root/frontdesk.example.toml"
echo "server at $url"
# The example config lists no agents: serve made the `demo` agent and kept its password.
AGENT_NAME=demo AGENT_PASSWORD="$(cat "$data/store/demo-agent-password")"
export AGENT_NAME AGENT_PASSWORD

out="${SCREENSHOT_DIR:-$here/screenshots}"
mkdir -p "$out"
node "$here/chat.mjs" "$url" "$out"

# The lead's cockpit: a folder from `frontdesk init` (editable rules and intents; ana is its
# admin), a report written by `eval --html` into the data folder's reports/, a second server.
kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
server_pid=""
conf="$data/conf"
"$bin" init "$conf" >"$data/init.txt"
LEAD_NAME=ana
LEAD_PASSWORD="$(awk '$1 == "ana" {print $2}' "$data/init.txt")"
export LEAD_NAME LEAD_PASSWORD
mkdir -p "$data/store2/reports"
(cd "$root" && "$bin" eval intents --test tests/data/in_scope_val.csv \
  --html "$data/store2/reports/intents.html" >/dev/null)
start_server "$conf" "$data/server2.log" --data "$data/store2" --config "$conf/frontdesk.toml"
echo "lead's server at $url"
node "$here/lead.mjs" "$url" "$out"
