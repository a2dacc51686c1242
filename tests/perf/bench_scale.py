"""Cost as the work grows: 1,000 users against 100,000 users and 1,000,000 sessions, side by side in one run.

Issue 14, item 3. Two schemas of one PostgreSQL, migrated with `flask db
upgrade` and loaded with COPY (one password hash, made once, for every user):

- scale_small: 1,000 users and 10,000 sessions;
- scale_large: 100,000 users and 1,000,000 sessions;

both with the same mix: sessions opened evenly over 600 days on random users,
30-day refresh expiry, half of them rotated, 30 % ended early, so that about
96 % are ended or expired and the rest live; 1 % of users inactive. Then
VACUUM (ANALYZE), so that no autovacuum of the fresh rows runs during the
measurements.

1. The service (Procfile's `web:` command, bound to 127.0.0.1, 2 workers,
   RATELIMIT_ENABLED=false) on each schema; wrk from its own process over 200
   users of each schema, each with a session of their own, in alternating
   rounds (the order of the two schemas alternating too): GET /protected with
   SESSION_CACHE=false (every request asks the sessions table), GET
   /protected with the session cache on (the default), and POST /token. The
   ratios large/small are what to read: the machine is shared.
2. EXPLAIN (ANALYZE, BUFFERS) on the large schema of the hot statements: the
   plpgsql function of every guarded request, the plan it runs inside
   (auto_explain, nested statements), the same query written out, the
   login's statements and the refresh's SELECT ... FOR UPDATE.
3. `flask sessions purge` on the large schema, as an operator runs it, while
   wrk drives POST /token and GET /protected (SESSION_CACHE=false): its
   duration and rows deleted, latencies during the purge against no purge
   and against a control (the same command on the small schema: the cost of
   a Python CLI starting on the same machine), and the service's backends
   that waited on a lock (pg_stat_activity, every 50 ms); how long the
   purge's DELETE ran, and how long its transaction then stayed open.

    pipenv run python tests/perf/bench_scale.py [--seconds 3] [--rounds 3] [--connections 8]

The database is BENCH_DATABASE_URL (else as bench.py); its schemas
scale_small and scale_large are replaced, and dropped at the end unless
--keep. It takes about 3 minutes on a 2-core machine (4 with --rounds 5).
"""

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from bench import (
    PASSWORD,
    ROOT,
    SECRET,
    Server,
    database_url,
    env,
    hash_password,
    in_schema,
    log_in,
    measure,
    wrk,
)
from sqlalchemy import create_engine, delete, func, not_, select, text
from sqlalchemy.dialects import postgresql

from tokenservice.rules.sessions import LIVE, LIVE_USER

# bench (imported above) has put src/ on sys.path.
from tokenservice.storage.models import LoginSession, User

BENCH_USERS = 200
SESSIONS_PER_USER = 10
SMALL_USERS = 1_000
LARGE_USERS = 100_000
DAY = 86_400
SPAN_DAYS = 600  # sessions opened evenly over this many days up to now
REFRESH_DAYS = 30  # JWT_REFRESH_TOKEN_EXPIRES's default
ROTATED, ENDED = 0.5, 0.3  # shares of sessions refreshed at least once, and ended before expiry
SAMPLE_SECONDS = 0.05
TOLERANCE = 0.10
ROUTES = ("GET /protected, SESSION_CACHE=false", "GET /protected, cache on (default)", "POST /token")


# Loading ------------------------------------------------------------------


class LineStream:
    """A file for psycopg2's copy_expert, reading an iterator of lines as COPY asks for them.

    copy_expert sends whatever read() returns, whatever its length, until "".
    """

    def __init__(self, lines):
        self._lines = iter(lines)

    def read(self, size: int = -1) -> str:
        return "".join(itertools.islice(self._lines, 2000))


def timestamp(epoch: float | None) -> str:
    return "\\N" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def bench_ids(users: int) -> list[int]:
    """The 200 users the load logs in as, spread over the whole table."""
    step = users // BENCH_USERS
    return [1 + i * step for i in range(BENCH_USERS)]


def user_lines(users: int, password_hash: str):
    protected = set(bench_ids(users))
    for i in range(1, users + 1):
        active = "f" if i % 100 == 37 and i not in protected else "t"
        yield f"{i}\tuser{i}\t{active}\t{password_hash}\n"


def session_lines(count: int, users: int, now: float, seed: int):
    """Sessions opened evenly over SPAN_DAYS on random users; most ended or expired by now."""
    rng = random.Random(seed)
    start, step, refresh = now - SPAN_DAYS * DAY, SPAN_DAYS * DAY / count, REFRESH_DAYS * DAY
    for i in range(count):
        created = start + (i + rng.random()) * step
        expires, previous, rotated, ended = created + refresh, "\\N", None, None
        if rng.random() < ROTATED:
            rotated = created + rng.random() * min(0.7 * refresh, now - created)
            previous, expires = f"{rng.getrandbits(128):032x}", rotated + refresh
        if rng.random() < ENDED:
            ended = created + rng.random() * (min(expires, now) - created)
        yield (
            f"{rng.getrandbits(128):032x}\t{rng.randrange(1, users + 1)}\t{rng.getrandbits(128):032x}\t{previous}\t"
            f"{timestamp(rotated)}\t{timestamp(created)}\t{timestamp(expires)}\t{timestamp(ended)}\n"
        )


def prepare(url: str, schema: str, users: int, password_hash: str, server_env: dict) -> tuple[str, dict]:
    """Migrate `schema` and load it with COPY; its URL and what it holds."""
    started = time.monotonic()
    schema_url = in_schema(url, schema)
    subprocess.run(
        ["flask", "db", "upgrade"],
        cwd=ROOT,
        env={**server_env, "DATABASE_URL": schema_url},
        check=True,
        capture_output=True,
    )
    engine = create_engine(schema_url)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.copy_expert(
            "COPY users (id, username, is_active, password_hash) FROM STDIN",
            LineStream(user_lines(users, password_hash)),
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (users,))
        sessions = session_lines(users * SESSIONS_PER_USER, users, time.time(), seed=users)
        cursor.copy_expert(
            "COPY sessions (id, user_id, refresh_jti, previous_refresh_jti, rotated_at, created_at, expires_at, "
            "ended_at) FROM STDIN",
            LineStream(sessions),
        )
        connection.commit()
    finally:
        connection.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
        autocommit.execute(text("VACUUM (ANALYZE) users, sessions"))
        counts = autocommit.execute(
            text(
                "SELECT (SELECT count(*) FROM users), count(*), "
                "count(*) FILTER (WHERE ended_at IS NULL AND expires_at > now()), "
                "count(*) FILTER (WHERE ended_at IS NOT NULL), "
                "count(*) FILTER (WHERE ended_at IS NULL AND expires_at <= now()), "
                "pg_size_pretty(pg_total_relation_size('sessions')) FROM sessions"
            )
        ).one()
    engine.dispose()
    held = dict(zip(("users", "sessions", "live", "ended", "expired", "size"), counts, strict=True))
    held["seconds"] = time.monotonic() - started
    return schema_url, held


# Measuring ----------------------------------------------------------------


def start(name: str, schema_url: str, base_env: dict, **settings) -> Server:
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    # The Procfile's command, bound to loopback only (a command-line --bind outranks the config file's).
    command = procfile["web"] + " --bind 127.0.0.1:{port}"
    return Server(name, command, ROOT, {**base_env, "DATABASE_URL": schema_url, **settings})


def median(runs: list[dict], field: str = "rate") -> float:
    return statistics.median(run[field] for run in runs)


def alternate(args, runs: dict, figures: dict) -> None:
    """`runs`: (route, schema) -> (server, path, mode, lines); rounds with the schemas' order alternating."""
    for server, path, mode, lines in runs.values():  # warm every worker's connections
        measure(server.url(path), mode, lines, 1, args.connections)
    routes = list(dict.fromkeys(route for route, _ in runs))
    for number in range(args.rounds):
        order = ("small", "large") if number % 2 == 0 else ("large", "small")
        for route in routes:
            for schema in order:
                server, path, mode, lines = runs[(route, schema)]
                figures.setdefault((route, schema), []).append(
                    measure(server.url(path), mode, lines, args.seconds, args.connections)
                )


def report_scale(args, figures: dict, held: dict) -> list[tuple[str, bool]]:
    print(f"\n## 1. Requests: small against large, {args.rounds} alternating rounds of {args.seconds} s")
    print(f"wrk, {args.connections} connections, {BENCH_USERS} users of each schema; req/s (p50 / p99 ms), medians\n")
    small_name, large_name = (
        f"{held[schema]['users']:,} users, {held[schema]['sessions']:,} sessions" for schema in held
    )
    print(
        f"| route | small: {small_name} | large: {large_name} | large/small req/s | req/s, each round "
        "| large/small p50 | large/small p99 |"
    )
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for route in ROUTES:
        small, large = figures[(route, "small")], figures[(route, "large")]
        cells = [
            f"{median(runs):.0f} ({median(runs, 'p50_ms'):.1f} / {median(runs, 'p99_ms'):.1f})"
            for runs in (small, large)
        ]
        ratio = median(large) / median(small)
        rounds = " ".join(f"{b['rate'] / a['rate']:.2f}" for a, b in zip(small, large, strict=True))
        p50, p99 = (median(large, field) / median(small, field) for field in ("p50_ms", "p99_ms"))
        print(f"| `{route}` | {cells[0]} | {cells[1]} | {ratio:.2f} | {rounds} | {p50:.2f} | {p99:.2f} |")
        verdicts.append(
            (f"{route}: large at {ratio:.2f}x small's req/s (at least {1 - TOLERANCE:.2f}x)", ratio >= 1 - TOLERANCE)
        )
    return verdicts


# Plans --------------------------------------------------------------------


def sql_of(statement) -> tuple[str, dict]:
    """A SQLAlchemy statement as psycopg2 runs it: SQL with %(name)s placeholders, and its parameters."""
    compiled = statement.compile(dialect=postgresql.psycopg2.dialect())
    params = {key: str(value) if isinstance(value, uuid.UUID) else value for key, value in compiled.params.items()}
    return str(compiled), params


def plans(schema_url: str, bench_user: int) -> list[tuple[str, bool]]:
    print("\n## 2. Plans of the hot statements on the large schema: EXPLAIN (ANALYZE, BUFFERS)")
    engine = create_engine(schema_url)
    connection = engine.raw_connection()
    cursor = connection.cursor()
    cursor.execute(
        "SELECT sessions.id, users.username FROM sessions JOIN users ON users.id = sessions.user_id "
        "WHERE sessions.user_id = %s AND sessions.ended_at IS NULL AND sessions.expires_at > now() "
        "ORDER BY sessions.created_at DESC LIMIT 1",
        (bench_user,),
    )
    session_id, username = cursor.fetchone()
    connection.commit()
    verdicts = []

    def explain(title: str, sql: str, params=None, *, index_scans: bool = True, analyze: bool = True) -> list[str]:
        cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ") + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
        connection.rollback()  # FOR UPDATE's lock and the INSERT's row go at once
        show(title, cursor.mogrify(sql, params).decode(), plan, index_scans)
        return plan

    def show(title: str, sql: str, plan: list[str], index_scans: bool) -> None:
        print(f"\n### {title}\n\n    {' '.join(sql.split())}\n")
        print("\n".join("    " + line for line in plan))
        if index_scans:
            scans = [line for line in plan if re.search(r"\b(Seq|Index|Index Only|Bitmap Heap) Scan\b", line)]
            ok = bool(scans) and not any("Seq Scan" in line or "Bitmap Heap Scan" in line for line in scans)
            verdicts.append((f"{title}: index scans only", ok))

    explain(
        "Every guarded request (SESSION_CACHE=false, or a write): the function",
        "SELECT * FROM live_session_user(%s, %s)",
        (bench_user, str(session_id)),
        index_scans=False,
    )

    # The function's own plan is hidden behind "Function Scan": auto_explain shows the one it runs,
    # after PostgreSQL's first five custom plans, when a generic plan may have replaced them.
    cursor.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; "
        "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; SET auto_explain.log_level = notice"
    )
    for _ in range(7):
        del connection.notices[:]
        cursor.execute("SELECT * FROM live_session_user(%s, %s)", (bench_user, str(session_id)))
    nested = next((notice for notice in connection.notices if "live_session_user" not in notice.split("\n", 2)[1]), "")
    connection.rollback()  # the SETs go with it
    # "Query Text: ..." and its indented continuation lines, then the plan, whose first line is not indented.
    lines = nested.rstrip().splitlines()[1:]
    query = next((n for n, line in enumerate(lines) if n and not line[:1].isspace()), len(lines))
    show(
        "Inside the function, its 7th call (auto_explain of the nested statement; $1, $2: a generic plan)",
        " ".join(lines[:query]).removeprefix("Query Text:") or "(auto_explain printed nothing)",
        lines[query:],
        True,
    )

    explain(
        "The same query written out",
        "SELECT users.* FROM users JOIN sessions ON sessions.user_id = users.id WHERE users.id = %s "
        "AND users.is_active AND sessions.id = %s AND sessions.ended_at IS NULL AND sessions.expires_at > now()",
        (bench_user, str(session_id)),
    )
    # users.find_user_by_username's query, built the same way.
    explain("Login: the user by username", *sql_of(select(User).where(func.lower(User.username) == username.lower())))
    # users.authenticate's db.session.refresh(user, with_for_update=True).
    explain("Login: the user's row again, locked", *sql_of(select(User).where(User.id == bench_user).with_for_update()))
    explain(
        "Login: the new session (sessions.start_session; the foreign key's check included)",
        "INSERT INTO sessions (id, user_id, refresh_jti, expires_at) VALUES (%s, %s, %s, now() + interval '30 days')",
        (str(uuid.uuid4()), bench_user, str(uuid.uuid4())),
        index_scans=False,
    )
    # sessions.refresh_session's statement, built the same way.
    refresh = (
        select(
            LoginSession,
            User,
            LIVE_USER.label("live"),
            (func.clock_timestamp() - LoginSession.rotated_at <= timedelta(seconds=10)).label("in_window"),
        )
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == session_id, LoginSession.user_id == bench_user)
        .with_for_update(of=LoginSession)
    )
    explain("Refresh: the session and its user, locked (sessions.refresh_session)", *sql_of(refresh))
    explain(
        "The purge's DELETE (sessions.purge_sessions; plain EXPLAIN: one pass over the table, as intended)",
        *sql_of(delete(LoginSession).where(not_(LIVE))),
        analyze=False,
        index_scans=False,
    )
    connection.close()
    engine.dispose()
    return verdicts


# The purge ----------------------------------------------------------------

# The service's busy backends, and the purge's in any state: after its DELETE it may sit idle in its transaction.
ACTIVITY = """
SELECT a.pid, a.state, a.query, a.wait_event_type, a.wait_event,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END,
       (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.application_name = 'tokenservice' AND a.pid <> pg_backend_pid()
  AND (a.state = 'active' OR a.query LIKE 'DELETE FROM sessions%')
"""


def finish(run: subprocess.Popen) -> dict:
    """Stop a wrk run begun for longer than needed (SIGINT: it reports what it did so far)."""
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=60)
    Path(run.lines_file).unlink()
    try:
        figures = json.loads(output.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"{run.args} printed no results:\n{output}") from None
    figures["rate"] = figures["requests"] / figures["seconds"]
    return figures


def watch(args, url: str, schema_url: str, base_env: dict, loads) -> dict:
    """`flask sessions purge` on `schema_url` while `loads` run; the service's backends sampled meanwhile."""
    monitor = create_engine(url).raw_connection()
    monitor.set_session(autocommit=True)
    cursor = monitor.cursor()
    runs = loads()
    time.sleep(1)
    started = time.monotonic()
    operator = subprocess.Popen(
        ["flask", "sessions", "purge"],
        cwd=ROOT,
        env={**base_env, "DATABASE_URL": schema_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    command = psutil.Process(operator.pid)
    seen = {"samples": 0, "waiting_max": 0, "waiting_samples": 0, "blocked_by_purge": 0, "locks": set()}
    seen |= {"service_waits": Counter(), "purge_waits": Counter(), "pid": None, "statement": None, "rss_mb": 0.0}
    seen |= {"active": [], "idle": []}  # when the purge's DELETE was seen running, and its transaction open but idle
    while operator.poll() is None:
        tick = time.monotonic()
        with contextlib.suppress(psutil.Error):
            seen["rss_mb"] = max(seen["rss_mb"], command.memory_info().rss / 2**20)
        cursor.execute(ACTIVITY)
        rows = cursor.fetchall()
        seen["samples"] += 1
        waiting = 0
        for pid, state, query, wait_type, wait_event, blockers, ungranted in rows:
            wait = f"{wait_type}:{wait_event}" if wait_type else "running (CPU)"
            if query.startswith("DELETE FROM sessions"):
                seen["pid"], seen["statement"] = pid, " ".join(query.split())
                if state == "active":
                    seen["active"].append(tick - started)
                    seen["purge_waits"][wait] += 1
                else:
                    seen["idle"].append(tick - started)
                if not seen["locks"]:
                    cursor.execute(
                        "SELECT DISTINCT locktype || ' ' || coalesce(relation::regclass::text, '') || ' ' || mode "
                        "FROM pg_locks WHERE pid = %s AND granted ORDER BY 1",
                        (pid,),
                    )
                    seen["locks"] = {row[0] for row in cursor.fetchall()}
                continue
            if pid == seen["pid"] or state != "active":
                continue
            seen["service_waits"][wait] += 1
            if wait_type == "Lock" or ungranted:
                waiting += 1
                seen["blocked_by_purge"] += bool(blockers and seen["pid"] in blockers)
        seen["waiting_max"] = max(seen["waiting_max"], waiting)
        seen["waiting_samples"] += waiting > 0
        time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - tick)))
    seen["seconds"] = time.monotonic() - started
    time.sleep(0.5)
    seen["figures"] = [finish(run) for run in runs]
    monitor.close()
    output, errors = operator.communicate()
    if operator.returncode:
        raise SystemExit(f"flask sessions purge failed:\n{output}{errors}")
    seen["output"] = output.strip()
    deleted = re.search(r"Deleted (\d+) ended or expired sessions", output)
    seen["deleted"] = int(deleted[1]) if deleted else None
    return seen


def span(times: list[float]) -> str:
    """How long something was seen, from samples every SAMPLE_SECONDS."""
    if not times:
        return "not seen"
    return f"about {times[-1] - times[0] + SAMPLE_SECONDS:.1f} s (from {times[0]:.1f} s to {times[-1]:.1f} s)"


def purge(args, url: str, schema_url: str, base_env: dict, login: Server, reader: Server, usernames, access) -> list:
    print("\n## 3. `flask sessions purge` on the large schema, under load")
    print(
        f"wrk: POST /token ({args.connections} connections, cache on) and GET /protected "
        f"({args.connections} connections, SESSION_CACHE=false), both on the large schema, in three windows:\n"
        "no purge; the same command on the small schema (a control: what a Python CLI starting on this busy\n"
        "2-core machine costs the service, with next to nothing to delete); the purge of the large schema.\n"
    )

    def loads():
        return [
            wrk(login.url("/token"), "login", [PASSWORD, *usernames], 600, args.connections),
            wrk(reader.url("/protected"), "bearer", access, 600, args.connections),
        ]

    quiet = max(6, 2 * args.seconds)
    runs = loads()
    time.sleep(quiet)
    before = [finish(run) for run in runs]
    control = watch(args, url, schema_url.replace("scale_large", "scale_small"), base_env, loads)
    large = watch(args, url, schema_url, base_env, loads)

    engine = create_engine(schema_url)
    with engine.connect() as connection:
        left, live = connection.execute(
            text("SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL AND expires_at > now()) FROM sessions")
        ).one()
    engine.dispose()

    print("    " + large["output"].replace("\n", "\n    "))
    print(f"\n- rows deleted from the large schema: {large['deleted']:,}, in one statement; left: {left:,} sessions")
    print(f"  ({live:,} live); from the small schema (the control): {control['deleted']:,}")
    print(f"- the command took {large['seconds']:.1f} s (the control {control['seconds']:.1f} s); its statement:")
    print(f"    {large['statement']}")
    print(
        f"- the DELETE running: {span(large['active'])}; then its transaction open, idle, while the command\n"
        f"  worked in Python: {span(large['idle'])} (pg_stat_activity every {SAMPLE_SECONDS * 1000:.0f} ms).\n"
        f"  The command's peak memory: {large['rss_mb']:.0f} MB (the control's {control['rss_mb']:.0f} MB)."
    )
    if "RETURNING" in (large["statement"] or ""):
        print(
            f"  RETURNING sends every deleted id ({large['deleted']:,}) to the command, which reads them in Python\n"
            "  before it commits (SQLAlchemy's ORM DELETE synchronising the session: 'fetch', since now() cannot\n"
            "  be evaluated in Python)."
        )
    print(f"- the DELETE held: {'; '.join(sorted(large['locks'])) or '(not sampled)'}")
    print(f"- the DELETE's own wait events, in samples: {dict(large['purge_waits'].most_common())}")
    print(
        f"\n| load | no purge ({quiet} s) | control: purge of the small schema "
        f"({control['figures'][0]['seconds']:.1f} s) | purge of the large schema "
        f"({large['figures'][0]['seconds']:.1f} s) | p99 large purge / control | "
        "p99 large purge / no purge |"
    )
    print("|---|---|---|---|---|---|")
    verdicts = []
    names = ("POST /token", "GET /protected, SESSION_CACHE=false")
    for n, name in enumerate(names):
        a, b, c = before[n], control["figures"][n], large["figures"][n]
        cells = [
            f"{x['rate']:.0f} req/s, p50 {x['p50_ms']:.1f} / p99 {x['p99_ms']:.1f} ms, {x['failed']} failed"
            for x in (a, b, c)
        ]
        print(
            f"| `{name}` | {cells[0]} | {cells[1]} | {cells[2]} | {c['p99_ms'] / b['p99_ms']:.2f} "
            f"| {c['p99_ms'] / a['p99_ms']:.2f} |"
        )
        verdicts.append((f"{name}: no request failed during the purge", c["failed"] == 0))
    for label, seen in (("control", control), ("large purge", large)):
        print(
            f"\n- {label}: service backends waiting on a lock: at most {seen['waiting_max']} at once; samples with "
            f"any: {seen['waiting_samples']} of {seen['samples']}; waits whose blocker was the purge: "
            f"{seen['blocked_by_purge']}"
        )
        print(
            f"  the service's active backends by wait event, all samples: {dict(seen['service_waits'].most_common())}"
        )
    verdicts.append(("no login or request waited on a lock held by the purge", large["blocked_by_purge"] == 0))
    verdicts.append(("no service backend waited on any lock during the purge", large["waiting_max"] == 0))
    return verdicts


# Main ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--large-users", type=int, default=LARGE_USERS, help="(for a quick try of the script)")
    parser.add_argument("--keep", action="store_true", help="keep the two schemas afterwards")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("The benchmark drives the servers with wrk: sudo apt-get install wrk")

    url = database_url()
    base_env = env(JWT_SECRET_KEY=SECRET, RATELIMIT_ENABLED="false", WEB_CONCURRENCY="2")
    began = time.monotonic()
    password_hash = hash_password(PASSWORD)  # once, for every user of both schemas
    schemas = {}
    for schema, users in (("small", SMALL_USERS), ("large", args.large_users)):
        schemas[schema] = prepare(url, f"scale_{schema}", users, password_hash, base_env)
    print("## Data (COPY, then VACUUM (ANALYZE))\n")
    print("| schema | users | sessions | live | ended | expired, not ended | sessions' size with indexes | load time |")
    print("|---|---|---|---|---|---|---|---|")
    for schema, (_, held) in schemas.items():
        print(
            f"| scale_{schema} | {held['users']:,} | {held['sessions']:,} | {held['live']:,} | {held['ended']:,} "
            f"| {held['expired']:,} | {held['size']} | {held['seconds']:.0f} s |"
        )

    users = {"small": SMALL_USERS, "large": args.large_users}
    names = {schema: [f"user{i}" for i in bench_ids(count)] for schema, count in users.items()}
    figures: dict[tuple[str, str], list[dict]] = {}
    servers: dict[str, Server] = {}
    verdicts = []
    try:
        print(f"\nload average (1 min) before the requests: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        # Phase 1: the default settings (session cache on): logins, and cached reads.
        for schema in ("small", "large"):
            servers[f"{schema} cached"] = start(f"{schema}, cache on", schemas[schema][0], base_env)
        access = {
            schema: [tokens["access_token"] for tokens in log_in(servers[f"{schema} cached"], names[schema], PASSWORD)]
            for schema in ("small", "large")
        }
        runs = {}
        for schema in ("small", "large"):
            server = servers[f"{schema} cached"]
            runs[(ROUTES[1], schema)] = (server, "/protected", "bearer", access[schema])
            runs[(ROUTES[2], schema)] = (server, "/token", "login", [PASSWORD, *names[schema]])
        alternate(args, runs, figures)
        servers.pop("small cached").stop()  # at most three servers' connections at once

        # Phase 2: SESSION_CACHE=false: every read asks the sessions table (the same tokens work).
        for schema in ("small", "large"):
            servers[f"{schema} uncached"] = start(
                f"{schema}, no cache", schemas[schema][0], base_env, SESSION_CACHE="false"
            )
        runs = {
            (ROUTES[0], schema): (servers[f"{schema} uncached"], "/protected", "bearer", access[schema])
            for schema in ("small", "large")
        }
        alternate(args, runs, figures)
        servers.pop("small uncached").stop()
        verdicts += report_scale(args, figures, {schema: held for schema, (_, held) in schemas.items()})

        verdicts += plans(schemas["large"][0], bench_ids(users["large"])[BENCH_USERS // 2])
        verdicts += purge(
            args,
            url,
            schemas["large"][0],
            base_env,
            servers["large cached"],
            servers["large uncached"],
            names["large"],
            access["large"],
        )
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep:
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(
                    text("DROP SCHEMA IF EXISTS scale_small CASCADE; DROP SCHEMA IF EXISTS scale_large CASCADE")
                )
            engine.dispose()

    print(f"\n## Verdicts ({time.monotonic() - began:.0f} s in all; load average now {os.getloadavg()[0]:.1f})\n")
    for verdict, met in verdicts:
        print(f"  {'yes' if met else 'NO '}  {verdict}")


if __name__ == "__main__":
    main()
