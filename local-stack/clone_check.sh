#!/usr/bin/env bash
# Proves two things the local stack promises (run by scripts/test, ~30 s):
#   - any clone location works: a copy of this working tree in a fresh 0700 directory
#     (as root, the servers' users cannot enter it) starts a full stack;
#   - two stacks run side by side: that stack uses other ports (STACK_* variables)
#     while this clone's stack keeps running, and the end-to-end tick test passes on it.
#     Its ports are below Linux's ephemeral range (32768-60999), so no client socket of
#     the first stack can be holding one of them.
# The second stack and the copy are deleted afterwards.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

closed=$(mktemp -d) # mode 0700
clone="$closed/clone"
second=(
  env -u STACK_DB_URL -u STACK_FUNCTIONS_URL -u STACK_STATE_DIR
  STACK_GATEWAY_PORT=28321 STACK_DB_PORT=28322 STACK_IMAP_PORT=28143 STACK_IMAPS_PORT=28993
  STACK_TEST_PORT_BASE=28480 STACK_OAUTH_PORT=28360
)
cleanup() {
  "${second[@]}" "$clone/scripts/stack" reset >/dev/null 2>&1 || true
  rm -rf "$closed"
}
[ -n "${KEEP_CLONE:-}" ] || trap cleanup EXIT

# The working tree as it is (tracked and new files, not ignored ones), tools linked.
mkdir "$clone"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$clone"
ln -s "$repo/tools/node_modules" "$clone/tools/node_modules"
[ "$(stat -c %a "$closed")" = 700 ] || { echo "clone check: $closed is not 0700"; exit 1; }

"${second[@]}" "$clone/scripts/stack" start >/dev/null
if [ "$(id -u)" -eq 0 ]; then
  [ -L "$clone/.stack" ] || { echo "clone check: .stack should link outside the 0700 clone"; exit 1; }
fi
[ "$(stat -c %a "$closed")" = 700 ] || { echo "clone check: the 0700 directory was opened up"; exit 1; }
(cd "$clone" && "${second[@]}" "$repo/tools/node_modules/.bin/deno" test --quiet --allow-all \
  tests/signed_path/cron_tick_test.ts)
echo "clone check: a second stack (ports 28321/28322/28143/28993/28360) from a clone in a 0700 directory passed"
