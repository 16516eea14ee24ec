#!/usr/bin/env bash
# Self-contained, rootless Dovecot instance for IMAP integration tests.
#
#   dovecot.sh start    [STATE_DIR]          generate config/certs, start, wait for ports
#   dovecot.sh stop     [STATE_DIR]          stop the instance (idempotent)
#   dovecot.sh status   [STATE_DIR]          exit 0 if running, 3 if not
#   dovecot.sh add-user USER PASSWORD [STATE_DIR]   add/replace a user (no restart needed)
#   dovecot.sh doveadm  ARGS...              doveadm against this instance's config
#
# STATE_DIR defaults to $DOVECOT_STATE_DIR, else <stack state>/dovecot.
# Ports: $STACK_IMAP_PORT (plain + STARTTLS) and $STACK_IMAPS_PORT (implicit TLS),
#        defaults in local-stack/ports.json; both on 127.0.0.1 only.
# When run as root, Dovecot runs as $DOVECOT_RUN_USER (default: dovecot).
# See local-stack/imap/README.md for the reasoning behind the configuration.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE="$SCRIPT_DIR/dovecot.conf.in"
# shellcheck source=../stack_env.sh
. "$SCRIPT_DIR/../stack_env.sh"

IMAP_PORT=$STACK_IMAP_PORT
IMAPS_PORT=$STACK_IMAPS_PORT
HOST=127.0.0.1
START_TIMEOUT=${DOVECOT_START_TIMEOUT:-15}   # seconds to wait for the ports
STOP_TIMEOUT=10                              # seconds before escalating to SIGKILL

# Non-root PATHs often lack /usr/sbin, where Debian installs the daemon.
PATH="$PATH:/usr/sbin:/sbin"

die() { echo "dovecot.sh: error: $*" >&2; exit 1; }
log() { echo "dovecot.sh: $*"; }

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# --- state dir & identity ------------------------------------------------------

# set_state_dir [DIR]: resolve STATE_DIR (absolute: Dovecot config paths must be)
# and the paths derived from it.
set_state_dir() {
  STATE_DIR=$(realpath -m "${1:-${DOVECOT_STATE_DIR:-$STACK_STATE_DIR/dovecot}}")
  CONF="$STATE_DIR/dovecot.conf"
  USERS="$STATE_DIR/users"
  LOGFILE="$STATE_DIR/dovecot.log"
  PIDFILE="$STATE_DIR/run/master.pid"
  # Dovecot puts its UNIX sockets in $STATE_DIR/run (longest name is ~25
  # chars); sun_path is limited to 108 bytes, so a deep STATE_DIR fails to bind.
  if (( ${#STATE_DIR} > 75 )); then
    die "STATE_DIR path too long for UNIX sockets (${#STATE_DIR} > 75 chars): $STATE_DIR"
  fi
}

# set_run_user: decide which unprivileged user all Dovecot processes run as.
# A non-root invoker runs it as themselves. Root drops to a system user, because
# Dovecot refuses to serve mail as uid 0 and a single uid keeps the setup
# identical in both cases (no chroot, no login/internal user split).
set_run_user() {
  if (( EUID == 0 )); then
    RUN_USER=${DOVECOT_RUN_USER:-dovecot}
    id "$RUN_USER" >/dev/null 2>&1 \
      || die "user '$RUN_USER' does not exist (install dovecot-core or set DOVECOT_RUN_USER)"
  else
    RUN_USER=$(id -un)
    if [[ -n "${DOVECOT_RUN_USER:-}" && "$DOVECOT_RUN_USER" != "$RUN_USER" ]]; then
      die "DOVECOT_RUN_USER=$DOVECOT_RUN_USER requires running as root"
    fi
  fi
  RUN_UID=$(id -u "$RUN_USER")
  RUN_GID=$(id -g "$RUN_USER")
  RUN_GROUP=$(id -gn "$RUN_USER")
  (( RUN_UID != 0 )) || die "DOVECOT_RUN_USER must not be root"
}

# as_run_user CMD...: run CMD as the run user (no-op when we already are it).
as_run_user() {
  if (( EUID == 0 )); then
    setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --init-groups -- "$@"
  else
    "$@"
  fi
}

# own PATH...: hand files to the run user (only meaningful as root).
own() {
  if (( EUID == 0 )); then chown -R "$RUN_UID:$RUN_GID" "$@"; fi
}

# lock_state: serialise start/stop/add-user on the same STATE_DIR (e.g. parallel
# test runners). fd 9 must NOT leak into the daemon, or the lock would be held
# for Dovecot's lifetime; see start_daemon.
lock_state() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 60 9 || die "timed out waiting for lock $STATE_DIR/.lock"
}

# --- generation ----------------------------------------------------------------

# gen_tls: a throw-away CA (ca.pem) and a server cert for localhost/127.0.0.1
# signed by it, so clients can verify the server with an explicit CA instead of
# disabling verification. Kept across restarts (clients may cache ca.pem);
# regenerated only when missing or about to expire.
gen_tls() {
  local d="$STATE_DIR/tls"
  if [[ -s "$STATE_DIR/ca.pem" && -s "$d/server.pem" && -s "$d/server.key" ]] \
     && openssl x509 -checkend 86400 -noout -in "$d/server.pem" >/dev/null 2>&1; then
    return 0
  fi
  log "generating test CA and server certificate"
  mkdir -p "$d"
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -subj "/CN=Dovecot IMAP test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/ca.key" -out "$STATE_DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
      -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 825 -in "$d/server.csr" \
      -CA "$STATE_DIR/ca.pem" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -extfile <(printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1") \
      -out "$d/server.pem" 2>/dev/null
  )
  rm -f "$d/server.csr"
  chmod 644 "$STATE_DIR/ca.pem" "$d/server.pem"   # public; tests read ca.pem
}

# write_config: render the template. Rewritten on every start so port/env
# changes and template edits apply; users, mail and certs are preserved.
write_config() {
  [[ -r "$TEMPLATE" ]] || die "missing template $TEMPLATE"
  sed -e "s|@STATE_DIR@|$STATE_DIR|g" \
      -e "s|@RUN_USER@|$RUN_USER|g" \
      -e "s|@RUN_GROUP@|$RUN_GROUP|g" \
      -e "s|@RUN_UID@|$RUN_UID|g" \
      -e "s|@RUN_GID@|$RUN_GID|g" \
      -e "s|@IMAP_PORT@|$IMAP_PORT|g" \
      -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
      "$TEMPLATE" >"$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
}

# init_state: create everything except the running daemon.
init_state() {
  mkdir -p "$STATE_DIR/mail" "$STATE_DIR/state"
  [[ -e "$USERS" ]] || (umask 077 && : >"$USERS")
  gen_tls
  write_config
  own "$STATE_DIR"
  # Catch unreadable parents (e.g. a repo under /root with mode 700) early,
  # instead of as an obscure Dovecot error.
  as_run_user test -r "$CONF" -a -w "$STATE_DIR/mail" \
    || die "user $RUN_USER cannot access $STATE_DIR; use a STATE_DIR whose parents it can traverse"
}

# --- process helpers -----------------------------------------------------------

# master_pid: print the pid of this instance's master, if it is alive.
master_pid() {
  local pid cmdline
  [[ -r "$PIDFILE" ]] || return 1
  pid=$(<"$PIDFILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Guard against pid reuse: it must be a dovecot master using our config.
  # (A zombie has an empty cmdline, so a killed master counts as not running.)
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"dovecot -c $CONF"* ]] || return 1
  echo "$pid"
}

# alive PID: process exists and is not a zombie (in containers PID 1 may not
# reap orphans promptly, and kill -0 succeeds on zombies).
alive() {
  local stat
  # (cat, not $(<file): a failed redirection there aborts the script under -e.)
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }            # drop "pid (comm) "; the state letter follows
  [[ "${stat:0:1}" != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# configured_port NAME: read a listener port back from the generated config
# (so status/"already running" report what the instance really uses).
configured_port() {
  awk -v name="$1" '
    $1 == "inet_listener" && $2 == name { inl = 1 }
    inl && $1 == "port" { print $3; exit }' "$CONF"
}

print_endpoints() {
  local imap imaps
  imap=$(configured_port imap); imaps=$(configured_port imaps)
  cat <<EOF
  IMAP  (plain/STARTTLS): imap://$HOST:$imap
  IMAPS (implicit TLS):   imaps://$HOST:$imaps
  CA certificate:         $STATE_DIR/ca.pem   (server cert: CN/SAN localhost, IP 127.0.0.1)
  config:                 $CONF
  log:                    $LOGFILE
EOF
}

# --- commands ------------------------------------------------------------------

cmd_start() {
  set_state_dir "${1:-}"
  set_run_user
  lock_state

  local pid
  if pid=$(master_pid); then
    log "already running (pid $pid, state $STATE_DIR)"
    print_endpoints
    return 0
  fi
  # Not running: clear stale sockets from a previous run. In particular a
  # leftover anvil-auth-penalty socket (disabled in the config) would make the
  # auth process retry connecting to it for ~5s on the first failed login.
  rm -rf "$STATE_DIR/run"

  for port in "$IMAP_PORT" "$IMAPS_PORT"; do
    if port_open "$port"; then
      die "port $HOST:$port is already in use by another process"
    fi
  done

  init_state
  log "starting dovecot as user $RUN_USER (state $STATE_DIR)"
  # The master daemonizes itself; 9>&- keeps our lock fd out of the daemon, and its
  # stdio goes to the log so a caller's pipe (`start | tail`) is not held open.
  touch "$LOGFILE" && own "$LOGFILE" # dovecot, as the run user, appends to it too
  as_run_user dovecot -c "$CONF" 9>&- </dev/null >>"$LOGFILE" 2>&1 \
    || die "dovecot failed to start; see $LOGFILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$IMAP_PORT" && port_open "$IMAPS_PORT"; do
    if (( SECONDS >= deadline )) || ! master_pid >/dev/null; then
      echo "---- last lines of $LOGFILE ----" >&2
      tail -n 20 "$LOGFILE" >&2 || true
      die "dovecot did not start listening on $HOST:$IMAP_PORT/$IMAPS_PORT"
    fi
    sleep 0.1
  done
  log "running (pid $(master_pid))"
  print_endpoints
}

cmd_stop() {
  set_state_dir "${1:-}"
  lock_state

  local pid children
  if ! pid=$(master_pid); then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  # Remember the children: the master kills them on SIGTERM, but we want to be
  # sure nothing (e.g. an imap process mid-command) outlives the stop.
  children=$(pgrep -P "$pid" || true)
  kill -TERM "$pid"

  local deadline=$((SECONDS + STOP_TIMEOUT)) left
  while :; do
    left=""
    for p in $pid $children; do
      if alive "$p"; then left+=" $p"; fi
    done
    [[ -z "$left" ]] && break
    if (( SECONDS >= deadline )); then
      log "processes still alive after ${STOP_TIMEOUT}s, sending SIGKILL:$left"
      # shellcheck disable=SC2086
      kill -KILL $left 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$PIDFILE"
  log "stopped (was pid $pid)"
}

cmd_status() {
  set_state_dir "${1:-}"
  local pid
  if pid=$(master_pid); then
    log "running (pid $pid, state $STATE_DIR)"
    print_endpoints
    return 0
  fi
  log "not running (state $STATE_DIR)"
  return 3
}

cmd_add_user() {
  (( $# >= 2 )) || die "usage: dovecot.sh add-user USER PASSWORD [STATE_DIR]"
  # Login names are lower-cased by Dovecot (auth_username_format = %Lu), so
  # store them that way or LOGIN would never match.
  local user=${1,,} pass=$2
  [[ "$user" =~ ^[a-z0-9._@+-]+$ ]] || die "invalid user name '$1' (allowed: a-z 0-9 . _ @ + -)"
  [[ -n "$pass" && "$pass" != *:* && "$pass" != *$'\n'* ]] \
    || die "password must be non-empty and contain no ':' or newline (passwd-file format)"
  set_state_dir "${3:-}"
  set_run_user
  lock_state
  init_state

  # Replace atomically: Dovecot re-reads the passwd-file when it changes, and
  # must never see a half-written file. uid/gid/home come from the userdb
  # default_fields in the config.
  local tmp="$USERS.tmp"
  (
    umask 077
    awk -F: -v u="$user" '$1 != u' "$USERS" >"$tmp"
    printf '%s:{PLAIN}%s::::::\n' "$user" "$pass" >>"$tmp"
  )
  own "$tmp"
  mv "$tmp" "$USERS"

  # Dovecot notices a changed passwd-file by its mtime, which has one-second
  # resolution: two changes within a second can go unseen. When the server runs,
  # wait until it really accepts the new password, so callers can log in at once.
  if master_pid >/dev/null; then
    local waited=0
    until doveadm -c "$CONF" auth test -x service=imap "$user" "$pass" >/dev/null 2>&1; do
      (( waited < 30 )) || die "dovecot does not accept the new password for '$user'"
      touch "$USERS"
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  log "user '$user' set in $USERS"
}

cmd_doveadm() {
  set_state_dir ""
  [[ -r "$CONF" ]] || die "no config at $CONF; run 'dovecot.sh start' first"
  # Commands with -u USER look the user up through the running auth service
  # and then drop to the user's uid, so this works as root or as the run user.
  exec doveadm -c "$CONF" "$@"
}

main() {
  local cmd=${1:-help}
  shift || true
  case "$cmd" in
    start)    cmd_start "$@" ;;
    stop)     cmd_stop "$@" ;;
    status)   cmd_status "$@" ;;
    add-user) cmd_add_user "$@" ;;
    doveadm)  cmd_doveadm "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
