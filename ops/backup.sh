#!/usr/bin/env bash
# Back up the platform's PostgreSQL database (README "Backup and restore").
#
#   ops/backup.sh base DEST_DIR   # a base backup of the whole cluster (pg_basebackup), with the WAL
#                                 # that makes it consistent; with the server's WAL archive it
#                                 # restores to any moment after it (point-in-time recovery)
#   ops/backup.sh dump DEST_DIR   # a logical dump of the one database (pg_dump, custom format)
#
# The server is the one DATABASE_URL names (postgres://user:password@host:port/database, as the
# app's), or the libpq PG* variables when DATABASE_URL is unset. A base backup connects for
# replication: the user needs the REPLICATION attribute (or to be a superuser) and pg_hba.conf a
# "replication" line for it. PostgreSQL's client programs are taken from PG_BIN if set, else PATH.
# Prints one line: what was written, its size and how long it took.
set -euo pipefail

usage() { echo "usage: $0 base|dump DEST_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
mode=$1
dest=$2
bin=${PG_BIN:+$PG_BIN/}
conn=()
if [ -n "${DATABASE_URL:-}" ]; then conn=(-d "$DATABASE_URL"); fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
started=$(date +%s%N)
mkdir -p "$dest"

case "$mode" in
  base)
    out="$dest/base-$stamp"
    # Plain format, so pg_verifybackup can check every file against the backup's manifest and the
    # WAL it needs; --checkpoint=fast starts at once instead of waiting for the next checkpoint.
    "${bin}pg_basebackup" "${conn[@]}" -D "$out" -F plain -X stream --checkpoint=fast \
      --manifest-checksums=SHA256 --label "prepaid $stamp" --no-password
    "${bin}pg_verifybackup" --quiet "$out"
    ;;
  dump)
    out="$dest/dump-$stamp.pgdump"
    "${bin}pg_dump" "${conn[@]}" -F custom --no-password -f "$out.partial"
    "${bin}pg_restore" --list "$out.partial" >/dev/null  # readable to its end
    mv "$out.partial" "$out"
    ;;
  *) usage ;;
esac

ms=$((($(date +%s%N) - started) / 1000000))
size=$(du -sh "$out" | cut -f1)
echo "backup $mode: $out ($size, $((ms / 1000)).$(printf %03d $((ms % 1000)))s)"
