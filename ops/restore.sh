#!/usr/bin/env bash
# Restore the platform's PostgreSQL database (README "Backup and restore").
#
#   ops/restore.sh base BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR [--target-time TIME] [--port PORT]
#       A new cluster in NEW_DATA_DIR (absent or empty) from the base backup BACKUP_DIR (written by
#       `ops/backup.sh base`), replaying the archived WAL up to its end or up to TIME (any moment
#       after the backup ended, e.g. "2026-12-05 14:30:00+08"), then promoted. With --port it starts
#       the server on PORT and returns once recovery has finished and it accepts writes. Run it as
#       the operating-system user that runs PostgreSQL (it owns the data directory).
#
#   ops/restore.sh dump DUMP_FILE
#       Load a dump (`ops/backup.sh dump`) into the empty database DATABASE_URL names (or PG*).
#
# The restored cluster does not archive its WAL: it must never write into the archive it was
# restored from. Once it is the primary, set archive_command to a new archive and take a new base
# backup. PostgreSQL's programs are taken from PG_BIN if set, else PATH.
set -euo pipefail

usage() {
  echo "usage: $0 base BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR [--target-time TIME] [--port PORT]" >&2
  echo "       $0 dump DUMP_FILE" >&2
  exit 2
}
bin=${PG_BIN:+$PG_BIN/}
started=$(date +%s%N)
elapsed() {
  local ms=$((($(date +%s%N) - started) / 1000000))
  echo "$((ms / 1000)).$(printf %03d $((ms % 1000)))s"
}

[ $# -ge 1 ] || usage
mode=$1
shift
case "$mode" in
  base)
    [ $# -ge 3 ] || usage
    backup=$(cd "$1" && pwd)
    archive=$(cd "$2" && pwd)
    data=$3
    shift 3
    target=""
    port=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --target-time) target=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        *) usage ;;
      esac
    done
    [ -f "$backup/backup_label" ] || { echo "$backup is not a base backup (no backup_label)" >&2; exit 1; }
    if [ -e "$data" ] && [ -n "$(ls -A "$data")" ]; then
      echo "$data is not empty: restore into a new directory" >&2
      exit 1
    fi
    mkdir -p "$data"
    cp -a "$backup/." "$data/"
    chmod 700 "$data"
    rm -f "$data/backup_manifest" "$data/postmaster.pid"
    {
      echo "# ops/restore.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): recovery from $backup"
      echo "restore_command = 'cp \"$archive/%f\" \"%p\"'"
      echo "archive_mode = 'off'"
      if [ -n "$target" ]; then
        echo "recovery_target_time = '$target'"
        echo "recovery_target_action = 'promote'"
      fi
    } >>"$data/postgresql.auto.conf"
    touch "$data/recovery.signal"
    if [ -z "$port" ]; then
      echo "restore base: $data prepared ($(elapsed)); start it: ${bin}pg_ctl -D $data start"
      exit 0
    fi
    "${bin}pg_ctl" -D "$data" -l "$data/restore.log" -o "-p $port -c listen_addresses=127.0.0.1" -w -t 600 start >/dev/null
    # The server answers read-only while it replays; wait until it has promoted itself.
    for _ in $(seq 1 600); do
      state=$("${bin}psql" -h 127.0.0.1 -p "$port" -d postgres -At -c "SELECT pg_is_in_recovery()" 2>/dev/null || true)
      [ "$state" = "f" ] && break
      sleep 0.2
    done
    if [ "$state" != "f" ]; then
      echo "recovery did not finish; see $data/restore.log" >&2
      exit 1
    fi
    echo "restore base: $data serving on port $port after recovery ($(elapsed))"
    ;;
  dump)
    [ $# -eq 1 ] || usage
    # pg_restore without a database would print SQL instead of loading it.
    conn=(-d "${DATABASE_URL:-${PGDATABASE:?set DATABASE_URL (or PGDATABASE) to the database to load into}}")
    "${bin}pg_restore" "${conn[@]}" --no-owner --exit-on-error --single-transaction --no-password "$1"
    echo "restore dump: $1 loaded ($(elapsed))"
    ;;
  *) usage ;;
esac
