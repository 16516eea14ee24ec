# shellcheck shell=bash
# Sourced by scripts/: the local stack's ports, URLs and state folder, the same ones
# local-stack/urls.ts gives the TypeScript side. Default ports come from
# local-stack/ports.json; any variable already set in the environment wins, so two
# stacks can run side by side (e.g. STACK_DB_PORT=55322 STACK_GATEWAY_PORT=55321 ...).
stack_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

while read -r stack_name stack_default; do
  [ -n "${!stack_name:-}" ] || export "$stack_name=$stack_default"
done < <(sed -nE 's/^ *"(STACK_[A-Z_]+)": *([0-9]+),?$/\1 \2/p' "$stack_repo/local-stack/ports.json")
unset stack_name stack_default

export STACK_DB_URL=${STACK_DB_URL:-postgresql://postgres:postgres@127.0.0.1:$STACK_DB_PORT/postgres}
export STACK_FUNCTIONS_URL=${STACK_FUNCTIONS_URL:-http://127.0.0.1:$STACK_GATEWAY_PORT/functions/v1}
export STACK_STATE_DIR=${STACK_STATE_DIR:-$stack_repo/.stack}
