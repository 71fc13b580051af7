"""The backup drill (README "Backup and restore"): a platform on a PostgreSQL cluster of the test's
own, with continuous WAL archiving, is backed up with ``ops/backup.sh``; business goes on after the
backup; the primary is then lost (stopped, its data directory deleted). ``ops/restore.sh`` rebuilds
it from the base backup and the archive into fresh clusters, and ``verify_ledger`` finds each
restored ledger sound, with the chain heads it had: all of it (to the end of the archive), as it
was right after the backup (point-in-time recovery), and from the logical dump.

It prints what the README states: how long the backup took, how long after the last commit that
commit was safe in the archive (the recovery point), and how long the restore took until the ledger
verified (the recovery time). PostgreSQL's server binaries are needed (/usr/lib/postgresql/*/bin):
without them the test is skipped, or fails under REQUIRE_POSTGRES=1. Run as root, the clusters and
the scripts run as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.net import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent
ARCHIVE_TIMEOUT = 5  # seconds; README recommends 60 in production: the recovery point is at most this old


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Drill:
    """A work folder (owned by the user that runs PostgreSQL) and the clusters started in it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="backup-drill-"))
        if AS_POSTGRES:
            shutil.chown(self.dir, user="postgres", group="postgres")
        self.running: list[Path] = []
        self.archive = self.dir / "wal-archive"
        self.backups = self.dir / "backups"
        self.pg("mkdir", str(self.archive), str(self.backups))

    def pg(self, *command: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        """Run ``command`` as the user that runs PostgreSQL, with its programs on PATH; its stdout."""
        full_env = {**os.environ, **(env or {}), "PG_BIN": str(self.bin)}
        full_env["PATH"] = f"{self.bin}:{full_env['PATH']}"
        prefix = [*AS_POSTGRES[:-1], "--preserve-environment", "--"] if AS_POSTGRES else []
        done = subprocess.run(
            [*prefix, *command], cwd=self.dir, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def primary(self) -> int:
        """initdb and start a cluster archiving its WAL to ``self.archive``; its port."""
        data, port = self.dir / "primary", free_port()
        self.pg("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# the drill's primary: WAL archived as README shows, fsync off for speed\n"
                f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{self.dir}'\n"
                "fsync = off\nwal_level = replica\narchive_mode = on\n"
                f"archive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'\n"
                f"archive_timeout = {ARCHIVE_TIMEOUT}\n"
            )
        self.pg("pg_ctl", "-D", str(data), "-l", str(self.dir / "primary.log"), "-w", "start")
        self.running.append(data)
        return port

    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        return self.pg(
            "psql", "-h", "127.0.0.1", "-p", str(port), "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql
        )

    def stop(self, data: Path, mode: str = "fast") -> None:
        subprocess.run(
            [*AS_POSTGRES, str(self.bin / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if data in self.running:
            self.running.remove(data)

    def remove(self) -> None:
        for data in list(self.running):
            self.stop(data, "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def drill():
    bin_dir = pg_bin()
    if bin_dir is None or (AS_POSTGRES and shutil.which("runuser") is None):
        message = "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and, as root, runuser"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    drill = Drill(bin_dir)
    try:
        yield drill
    finally:
        drill.remove()


def app_env(url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUIRE_POSTGRES", "LOG_FORMAT")}
    env.update(
        {
            "DATABASE_URL": url,
            "DJANGO_DEBUG": "1",
            "VAR_DIR": str(var_dir),
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )
    return env


def python(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def verify_ledger(env: dict[str, str]) -> dict:
    """``manage.py verify_ledger``: exits 0 only for a sound ledger; its JSON result."""
    return json.loads(python(env, "manage.py", "verify_ledger"))


HEADS = "SELECT chain, seq, hash FROM escrow_chainhead ORDER BY chain"


def test_the_base_backup_and_wal_archive_restore_a_fresh_cluster_whose_ledger_verifies_with_the_same_heads(
    drill, tmp_path, capsys
):
    port = drill.primary()
    drill.psql(port, "CREATE DATABASE prepaid")
    url = f"postgres://postgres@127.0.0.1:{port}/prepaid"
    env = app_env(url, tmp_path / "var")
    python(env, "manage.py", "migrate", "-v0")
    before = json.loads(python(env, "-m", "tests.ops.backup_world", "before", "3"))  # and verify_ledger
    heads_before = drill.psql(port, HEADS, "prepaid")
    assert before["entries"] > 0 and heads_before

    started = time.monotonic()
    drill.pg(str(ROOT / "ops/backup.sh"), "base", str(drill.backups), env={"DATABASE_URL": url})
    backup_seconds = time.monotonic() - started
    drill.pg(str(ROOT / "ops/backup.sh"), "dump", str(drill.backups), env={"DATABASE_URL": url})
    (base,) = drill.backups.glob("base-*")
    (dump,) = drill.backups.glob("dump-*.pgdump")
    backed_up_at = drill.psql(port, "SELECT clock_timestamp()")  # the point-in-time target, on the server's clock

    # Business goes on after the backup: only the WAL archive has it. Its last commit is safe once
    # the segment holding it is archived: at most archive_timeout later.
    after = json.loads(python(env, "-m", "tests.ops.backup_world", "after", "2"))
    last_commit = time.monotonic()
    segment = drill.psql(port, "SELECT pg_walfile_name(pg_current_wal_lsn())").strip()
    while drill.psql(port, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").strip() < segment:
        assert time.monotonic() - last_commit < ARCHIVE_TIMEOUT + 30, "the WAL was not archived"
        time.sleep(0.1)
    archived_after = time.monotonic() - last_commit
    heads_after = drill.psql(port, HEADS, "prepaid")
    assert after["entries"] > before["entries"] and heads_after != heads_before

    # The disaster: the primary and its disk are gone; the backup and the archive are left.
    drill.stop(drill.dir / "primary", "immediate")
    shutil.rmtree(drill.dir / "primary")

    # 1. Everything: the base backup, then the whole archive.
    started = time.monotonic()
    restored_port = free_port()
    restored = drill.dir / "restored"
    drill.pg(
        str(ROOT / "ops/restore.sh"), "base", str(base), str(drill.archive), str(restored), "--port", str(restored_port)
    )
    drill.running.append(restored)
    restored_env = app_env(f"postgres://postgres@127.0.0.1:{restored_port}/prepaid", tmp_path / "var")
    full = verify_ledger(restored_env)
    restore_seconds = time.monotonic() - started
    assert (full["head_hash"], full["entries"]) == (after["head_hash"], after["entries"])
    assert drill.psql(restored_port, HEADS, "prepaid") == heads_after
    assert full["problems"] == []

    # 2. Point in time: as it was right after the backup, before the later business.
    pitr_port = free_port()
    pitr = drill.dir / "pitr"
    drill.pg(
        str(ROOT / "ops/restore.sh"), "base", str(base), str(drill.archive), str(pitr),
        "--target-time", backed_up_at.strip(), "--port", str(pitr_port),
    )  # fmt: skip
    drill.running.append(pitr)
    as_backed_up = verify_ledger(app_env(f"postgres://postgres@127.0.0.1:{pitr_port}/prepaid", tmp_path / "var"))
    assert (as_backed_up["head_hash"], as_backed_up["entries"]) == (before["head_hash"], before["entries"])
    assert drill.psql(pitr_port, HEADS, "prepaid") == heads_before

    # 3. The logical dump, loaded into an empty database of the restored cluster.
    drill.psql(restored_port, "CREATE DATABASE from_dump")
    dump_url = f"postgres://postgres@127.0.0.1:{restored_port}/from_dump"
    drill.pg(str(ROOT / "ops/restore.sh"), "dump", str(dump), env={"DATABASE_URL": dump_url})
    from_dump = verify_ledger(app_env(dump_url, tmp_path / "var"))
    assert (from_dump["head_hash"], from_dump["entries"]) == (before["head_hash"], before["entries"])
    assert drill.psql(restored_port, HEADS, "from_dump") == heads_before

    with capsys.disabled():  # the drill's measurements are its report, shown in every run
        print(  # noqa: T201
            f"\nbackup drill: base backup {backup_seconds:.1f} s; the last commit was in the WAL archive "
            f"{archived_after:.1f} s after it was made (archive_timeout {ARCHIVE_TIMEOUT} s); restore from the base "
            f"backup and the archive until verify_ledger passed {restore_seconds:.1f} s; "
            f"{after['entries']} journal entries, none lost"
        )
