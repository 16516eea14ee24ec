#!/usr/bin/env bash
# Builds and installs the real pg_net, supabase_vault and pg_cron from the archives in
# local-stack/vendor/ (checksums verified first), into the system's PostgreSQL 15.
# Installed once and reused: an extension whose installed archive checksum matches
# is skipped. Run by scripts/install (needs root, or sudo, to install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vendor="$here/vendor"
pg_config=/usr/lib/postgresql/15/bin/pg_config
archives=(pg_net-0.20.5 supabase_vault-0.3.1 pg_cron-1.6.4)

log() { printf 'install: %s\n' "$*"; }
sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# Stamp of what is installed: the archive's checksum, beside the extension's control file.
stamp_of() { echo "$("$pg_config" --sharedir)/extension/${1%%-*}.vendor-sha256"; }
checksum_of() { awk -v f="$1.tar.gz" '$2 == f { print $1 }' "$vendor/SHA256SUMS"; }

pending=()
for archive in "${archives[@]}"; do
  name=${archive%%-*}
  stamp=$(stamp_of "$archive")
  if [ -f "$("$pg_config" --pkglibdir)/$name.so" ] && [ -f "$stamp" ] \
    && [ "$(cat "$stamp")" = "$(checksum_of "$archive")" ]; then
    continue
  fi
  pending+=("$archive")
done
[ ${#pending[@]} -gt 0 ] || exit 0

(cd "$vendor" && sha256sum --quiet --check SHA256SUMS) || {
  log "checksum mismatch in local-stack/vendor/; refusing to build"
  exit 1
}

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
for archive in "${pending[@]}"; do
  log "building $archive from local-stack/vendor/"
  tar -xzf "$vendor/$archive.tar.gz" -C "$build"
  make -s -C "$build/$archive" PG_CONFIG="$pg_config" >"$build/$archive.log" 2>&1 || {
    tail -30 "$build/$archive.log"
    exit 1
  }
  "${sudo_cmd[@]}" make -s -C "$build/$archive" PG_CONFIG="$pg_config" install >>"$build/$archive.log" 2>&1 || {
    tail -30 "$build/$archive.log"
    exit 1
  }
  checksum_of "$archive" | "${sudo_cmd[@]}" tee "$(stamp_of "$archive")" >/dev/null
done
