#!/usr/bin/python3
"""The real lindra-server on PostgreSQL under faults (issue 13, item 4):

  --case conninfo  a wrong connection string (malformed; right host, wrong
                   port; no such database): a clear message naming the
                   target, never the password, exit 1, quickly.
  --case restart   PostgreSQL (a throw-away cluster of the test's own)
                   restarted, then crashed and down a while, under 2 lindra-servers
                   and 20 tablets syncing in a loop: sessions in the outage
                   are told to retry after a while, the servers reconnect
                   by themselves, and afterwards every write is on the
                   server exactly once and every tablet holds the same rows.
  --case readyz    the admin listener's /readyz: 503 while PostgreSQL (a
                   cluster of the test's own) is down, 200 once it is back.
  --case timeout   a lock held elsewhere past --db-statement-timeout: the
                   push is cancelled whole and the device told to retry; the
                   next push, once the lock is gone, succeeds.

Usage: tests/pg_fault_test.py --server lindra-server --tablet lindra-tablet --case CASE
Needs LINDRA_TEST_PG (the restart case starts a cluster of its own too);
without it says so and exits 77 (ctest: skipped). Prints PASS/FAIL per
check; exits 1 if any failed. Every process it starts is stopped on the way
out, and every wait is bounded.
"""

import argparse
import concurrent.futures
import glob
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from testlib import check, die_with_parent, results  # noqa: E402

SKIP = 77
args = None
work = ""
procs = []  # every lindra-server and psql this test started
cluster = None  # the restart case's own PostgreSQL: {"bin", "dir", "port"}


def path(name):
    return os.path.join(work, name)


def run(cmd, timeout=30, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# ---- PostgreSQL -----------------------------------------------------------------


def psql(conninfo, sql, timeout=20):
    r = run(["psql", conninfo, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}\n{r.stderr}")
    return r.stdout.strip()


def with_dbname(conninfo, name):
    u = urllib.parse.urlsplit(conninfo)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def fresh_database(server):
    name = f"lindra_fault_{os.getpid()}_{random.randrange(10**6)}"
    psql(server, f"CREATE DATABASE {name}")
    return name


def drop_database(server, name):
    try:
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception as e:  # the server went away: nothing to drop
        print(f"note: could not drop {name}: {e}")


def pg_bin():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if not bins or not os.access(os.path.join(bins[-1], "initdb"), os.X_OK):
        raise RuntimeError("PostgreSQL's server programs are missing (Debian: apt-get install postgresql)")
    return bins[-1]


def as_owner(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def pg_ctl(*what, timeout=60):
    c = cluster
    return run(as_owner([os.path.join(c["bin"], "pg_ctl"), "-D", os.path.join(c["dir"], "data"), "-l",
                         os.path.join(c["dir"], "server.log"), "-w", "-t", "30", *what]), timeout=timeout)


def cluster_options(port, d):
    # fsync=off as scripts/pg.sh has it (the machine does not crash, only
    # PostgreSQL), but synchronous_commit stays on: with it off a crash loses
    # the last commits, pushes the server has acknowledged.
    return (f"-p {port} -k {d} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
            " -c full_page_writes=off")


def start_cluster():
    """A throw-away cluster on 127.0.0.1 and a random port, as scripts/pg.sh makes."""
    global cluster
    d = tempfile.mkdtemp(prefix="lpf.", dir="/tmp")  # short: the socket path must fit in sun_path
    cluster = {"bin": pg_bin(), "dir": d, "port": 0}
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    r = run(as_owner([os.path.join(cluster["bin"], "initdb"), "-D", os.path.join(d, "data"), "-A", "trust", "-U",
                      "postgres", "-E", "UTF8", "--no-locale", "--no-sync"]), timeout=120)
    if r.returncode != 0:
        raise RuntimeError("initdb failed:\n" + r.stdout + r.stderr)
    for _ in range(5):
        port = random.randrange(20000, 60000)
        opts = cluster_options(port, d)
        r = pg_ctl("-o", opts, "start")
        if r.returncode == 0:
            cluster["port"] = port
            return f"postgresql://postgres@127.0.0.1:{port}/postgres"
    raise RuntimeError("the test's PostgreSQL did not start")


def stop_cluster():
    global cluster
    if cluster is None:
        return
    if os.path.exists(os.path.join(cluster["dir"], "data", "postmaster.pid")):
        pg_ctl("-m", "immediate", "stop")
    shutil.rmtree(cluster["dir"], ignore_errors=True)
    cluster = None


# ---- lindra-server and lindra-tablet ----------------------------------------------


def start_server(db, name, extra=()):
    log = open(path(name + ".log"), "w")
    p = subprocess.Popen([args.server, "--db", db, "--listen", "127.0.0.1:0", "--token-key", path("token.key"),
                          "--insecure", *extra], stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    log.close()
    procs.append(p)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(path(name + ".log")) as f:
            for line in f:
                if line.startswith("listening on 127.0.0.1:"):
                    return p, int(line.strip().rsplit(":", 1)[1])
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start:\n" + open(path(name + ".log")).read()[-2000:])


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def token(user):
    return run([args.server, "issue-token", "--key", path("token.key"), "--user", user, "--role", "admin",
                "--ttl", "1h"]).stdout.strip()


def tablet(who, *cmd, timeout=30):
    return run([args.tablet, "--db", path(who + ".db"), *cmd], timeout=timeout)


def sync(who, port, tok, timeout=30):
    return tablet(who, "sync", "--server", f"127.0.0.1:{port}", "--insecure", "--token", tok, timeout=timeout)


def domain_dump(who):
    """Every row of the replica's domain tables (not lindra's own), in a stable order."""
    db = sqlite3.connect(f"file:{path(who + '.db')}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                           " AND name NOT LIKE 'lindra%' AND name NOT LIKE 'sqlite%' ORDER BY name")]
        out = []
        for t in tables:
            out.append((t, sorted(map(repr, db.execute(f"SELECT * FROM {t}").fetchall()))))
        return out
    finally:
        db.close()


def outbox_empty(who):
    return re.match(r"outbox: 0 writes", tablet(who, "outbox").stdout) is not None


def minutes_of(who, person, module):
    """The minutes column of PERSON's MODULE in `lindra-tablet show`."""
    r = tablet(who, "show", person)
    for line in r.stdout.splitlines():
        if module in line:
            return int(line.split()[-1])
    return None


def log_checks(db, expected_entries=None, what=""):
    """The log holds each (origin, seq) once, every device's entries 1..highest_seq, at dense positions."""
    dups = psql(db, "SELECT count(*) FROM (SELECT origin, seq FROM lindra_log GROUP BY 1, 2 HAVING count(*) > 1) d")
    check(f"{what}no (origin, seq) twice in the log", dups == "0", dups)
    n = int(psql(db, "SELECT count(*) FROM lindra_log"))
    seqs = int(psql(db, "SELECT coalesce(sum(highest_seq), 0) FROM lindra_device"))
    check(f"{what}the log holds every device's entries up to its highest seq ({n} = {seqs})", n == seqs)
    holes = psql(db, "SELECT count(*) FROM (SELECT origin FROM lindra_log GROUP BY origin"
                     " HAVING count(*) <> max(seq) OR min(seq) <> 1) d")
    check(f"{what}each device's seqs are 1..N in the log", holes == "0", holes)
    dense = psql(db, "SELECT coalesce(max(pos), 0) = count(*) AND coalesce(min(pos), 1) = 1"
                     " AND (SELECT pos FROM lindra_head) = count(*) FROM lindra_log")
    check(f"{what}positions are dense 1..{n}", dense == "t", dense)
    if expected_entries is not None:
        check(f"{what}the log holds {expected_entries} entries", n == expected_entries, n)
    return n


# ---- cases ---------------------------------------------------------------------


def case_conninfo(server):
    run([args.server, "gen-key", "--out", path("token.key")])
    u = urllib.parse.urlsplit(server)
    host = u.hostname or "127.0.0.1"
    user = u.username or "postgres"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    wrong = [
        ("a malformed connection string", "postgresql://lindra:sekrit@[::1", "invalid PostgreSQL connection string",
         None),
        ("the right host, a wrong port", f"postgresql://{user}:sekrit@{host}:{closed}/postgres", f":{closed}/postgres",
         "Check that the server is running"),
        ("a database that does not exist",
         f"postgresql://{user}:sekrit@{host}:{u.port or 5432}/lindra_no_such_database", "lindra_no_such_database",
         None),
    ]
    for what, db, names, hint in wrong:
        t0 = time.monotonic()
        p = subprocess.Popen([args.server, "--db", db, "--listen", "127.0.0.1:0", "--token-key", path("token.key"),
                              "--insecure"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=die_with_parent)
        procs.append(p)
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        took = time.monotonic() - t0
        text = out + err
        check(f"{what}: exit 1", p.returncode == 1, f"exit {p.returncode}\n{text}")
        check(f"{what}: within 5 s ({took:.1f} s)", took < 5, text)
        check(f"{what}: the message names the target ({names})", names in err, text)
        if hint:
            check(f"{what}: the message says what to check", hint in err, text)
        check(f"{what}: the message never holds the password", "sekrit" not in text, text)
        check(f"{what}: one line, from lindra-server", err.startswith("lindra-server: ") and err.count("\n") <= 3,
              text)
        check(f"{what}: never listens", "listening on" not in out, text)
        print(f"    ({what}) {err.strip()}")


def hold_head(db):
    """A psql session holding the log's head row, as a stuck server would; COMMIT on its stdin ends it."""
    locker = subprocess.Popen(["psql", db, "-X", "-At", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=die_with_parent)
    procs.append(locker)
    locker.stdin.write("BEGIN;\nSELECT pos FROM lindra_head FOR UPDATE;\n\\echo locked\n")
    locker.stdin.flush()
    line = ""
    deadline = time.monotonic() + 10
    while "locked" not in line and time.monotonic() < deadline:
        line = locker.stdout.readline()
    check("another session holds the head lock", "locked" in line, line)
    return locker


def release(locker):
    locker.stdin.write("COMMIT;\n")
    locker.stdin.close()
    locker.wait(timeout=10)


def idle_in_transaction(db, office):
    """A server stopped (SIGSTOP) inside a push, holding the head lock between
    statements: PostgreSQL ends its session after the idle-in-transaction
    timeout, and another server's pushes go on."""
    a, port_a = start_server(db, "server-a", ["--db-statement-timeout", "20s",
                                              "--db-idle-in-transaction-timeout", "2s"])
    b, port_b = start_server(db, "server-b", ["--db-statement-timeout", "20s"])
    clerk = token("clerk")
    tablet("clerk", "init")
    r = sync("clerk", port_b, clerk)
    check("a second office tablet pulls the seed", r.returncode == 0, r.stdout + r.stderr)
    before = int(psql(db, "SELECT count(*) FROM lindra_log"))
    locker = hold_head(db)
    tablet("office", "progress", "ola", "m2", "start", "--minutes", "7")
    stuck = subprocess.Popen([args.tablet, "--db", path("office.db"), "sync", "--server", f"127.0.0.1:{port_a}",
                              "--insecure", "--token", office], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, preexec_fn=die_with_parent)
    procs.append(stuck)
    waiting = "0"
    deadline = time.monotonic() + 10
    while waiting == "0" and time.monotonic() < deadline:
        waiting = psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND application_name = 'lindra-server' AND wait_event_type = 'Lock'")
        time.sleep(0.05)
    check("server A's push waits for the head lock", waiting == "1", waiting)
    a.send_signal(signal.SIGSTOP)
    try:
        release(locker)  # A's session takes the head and then idles: A is stopped
        time.sleep(0.2)
        idle = psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle in transaction'")
        check("server A's session holds the head, idle in a transaction", idle == "1", idle)
        tablet("clerk", "progress", "kari", "m2", "start", "--minutes", "3")
        t0 = time.monotonic()
        r = sync("clerk", port_b, clerk)
        took = time.monotonic() - t0
        check(f"server B's push goes through once PostgreSQL ends A's session ({took:.1f} s)",
              r.returncode == 0 and took < 8, r.stdout + r.stderr)
    finally:
        a.send_signal(signal.SIGCONT)
    out, _ = stuck.communicate(timeout=30)
    check("the stuck push fails and its tablet is told to retry", stuck.returncode == 1 and "retry after" in out, out)
    r = sync("office", port_a, office)
    check("the retry through server A succeeds", r.returncode == 0 and "synced: pushed" in r.stdout,
          r.stdout + r.stderr)
    check("both servers ran throughout", a.poll() is None and b.poll() is None)
    r = sync("clerk", port_b, clerk)
    check("the clerk's tablet pulls the office's retried push", r.returncode == 0, r.stdout + r.stderr)
    check("both tablets agree on Ola's M2", minutes_of("office", "ola", "M2") == minutes_of("clerk", "ola", "M2") == 7,
          (minutes_of("office", "ola", "M2"), minutes_of("clerk", "ola", "M2")))
    check("both tablets agree on Kari's M2", minutes_of("office", "kari", "M2") == minutes_of("clerk", "kari", "M2") == 3)
    check("entries were logged", int(psql(db, "SELECT count(*) FROM lindra_log")) > before)
    for q in (a, b):
        stop(q)


def case_timeout(server):
    run([args.server, "gen-key", "--out", path("token.key")])
    name = fresh_database(server)
    db = with_dbname(server, name)
    locker = None
    try:
        p, port = start_server(db, "server", ["--db-statement-timeout", "1500ms"])
        office = token("office")
        tablet("office", "init")
        tablet("office", "seed-demo")
        r = sync("office", port, office)
        check("the office's seed syncs", r.returncode == 0, r.stdout + r.stderr)
        apps = psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'lindra-server'")
        check(f"lindra-server's sessions show as application lindra-server ({apps})", int(apps) >= 1, apps)
        before = int(psql(db, "SELECT count(*) FROM lindra_log"))

        locker = hold_head(db)

        tablet("office", "progress", "ola", "m1", "start", "--minutes", "5")
        outbox = tablet("office", "outbox").stdout
        t0 = time.monotonic()
        r = sync("office", port, office)
        took = time.monotonic() - t0
        text = r.stdout + r.stderr
        check(f"a push blocked past the statement timeout fails ({took:.1f} s), exit 1", r.returncode == 1, text)
        check("within the timeout and a little", took < 10, text)
        check("the tablet is told to retry after a while", "retry after" in text and "unavailable" in text, text)
        time.sleep(0.3)
        log = open(path("server.log")).read()
        check("the server's log says why: the statement timeout",
              re.search(r'end="unavailable: .*statement timeout', log) is not None, log[-1500:])
        check("nothing of the push was applied", int(psql(db, "SELECT count(*) FROM lindra_log")) == before)
        check("the tablet kept its outbox", tablet("office", "outbox").stdout == outbox, outbox)

        release(locker)
        r = sync("office", port, office)
        check("with the lock gone the next push succeeds", r.returncode == 0 and "synced: pushed" in r.stdout,
              r.stdout + r.stderr)
        check("and its entries are logged once", int(psql(db, "SELECT count(*) FROM lindra_log")) > before)
        check("the server ran throughout", p.poll() is None)
        stop(p)
        idle_in_transaction(db, office)
        log_checks(db)
    finally:
        if locker and locker.poll() is None:
            locker.kill()
            locker.wait()
        for q in procs:
            stop(q)
        drop_database(server, name)


def case_restart(_server):
    tablets = 20
    db = start_cluster()
    print(f"note: the test's own PostgreSQL on port {cluster['port']} ({cluster['dir']})")
    run([args.server, "gen-key", "--out", path("token.key")])
    (a, port_a) = start_server(db, "server-a")
    (b, port_b) = start_server(db, "server-b")
    ports = [port_a, port_b]
    names = [f"t{i:02d}" for i in range(tablets)]
    tokens = {n: token("office-" + n) for n in names}

    tablet(names[0], "init")
    r = tablet(names[0], "seed-demo")
    check("the first tablet seeds", r.returncode == 0, r.stdout + r.stderr)
    r = sync(names[0], ports[0], tokens[names[0]])
    check("the seed syncs", r.returncode == 0, r.stdout + r.stderr)
    gatherings = [tablet(names[0], "id", "gathering", f"G{k}").stdout.strip() for k in range(1, 5)]
    check("the seed has four gatherings", all(re.fullmatch(r"[0-9a-f-]{36}", g) for g in gatherings), gatherings)

    writes = {n: 0 for n in names}  # minutes each tablet added, one write each
    outcomes = []  # (round, tablet, exit code, output) of every sync

    def one(n, i, rnd, write=True):
        if write:
            w = tablet(n, "progress", "ola", "m1", "start", "--minutes", "1")
            if w.returncode == 0:
                writes[n] += 1
            else:
                outcomes.append((rnd, n, -1, "write failed: " + w.stdout + w.stderr))
            # A contested title: the tablets must agree on one winner.
            g = gatherings[(i + rnd) % len(gatherings)]
            w = tablet(n, "gathering", "rename", g, f"G by {n} in round {rnd}")
            if w.returncode != 0:
                outcomes.append((rnd, n, -1, "rename failed: " + w.stdout + w.stderr))
        r = sync(n, ports[(i + rnd) % 2], tokens[n])
        outcomes.append((rnd, n, r.returncode, r.stdout + r.stderr))

    def round_(rnd, write=True):
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            for f in [pool.submit(one, n, i, rnd, write) for i, n in enumerate(names)]:
                f.result()

    for n in names[1:]:
        tablet(n, "init")
    round_(0, write=False)  # everyone pulls the seed
    failed0 = [o for o in outcomes if o[2] != 0]
    check("every tablet's first sync works", not failed0, failed0[:3])
    round_(1)
    # A restart in the middle of a round: sessions in flight lose their
    # connection, the next ones find PostgreSQL back.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        t0 = time.monotonic()
        restarting = pool.submit(lambda: (time.sleep(0.3), pg_ctl("-m", "fast", "restart"))[1])
        round_(2)
        round_(3)
        r = restarting.result()
    check(f"PostgreSQL restarted mid-run ({time.monotonic() - t0:.1f} s)", r.returncode == 0, r.stdout + r.stderr)
    # A crash (immediate: no shutdown checkpoint, recovery at the next start),
    # then an outage a round long: every session in it is told to retry.
    r = pg_ctl("-m", "immediate", "stop")
    check("PostgreSQL crashed", r.returncode == 0, r.stdout + r.stderr)
    first_down = len(outcomes)
    round_(4)
    down = outcomes[first_down:]
    told = [o for o in down if o[2] == 1 and "retry after" in o[3] and "unavailable" in o[3]]
    check(f"every session during the outage was told to retry after a while ({len(told)} of {len(down)})",
          len(told) == len(down), "\n".join(o[3] for o in down if o not in told)[:1500])
    r = pg_ctl("-o", cluster_options(cluster["port"], cluster["dir"]), "start")
    check("PostgreSQL started again", r.returncode == 0, r.stdout + r.stderr)
    for rnd in range(5, 8):
        round_(rnd)
    check("both servers ran throughout, never restarted", a.poll() is None and b.poll() is None)

    # Settle: each tablet until its outbox is empty, then everyone pulls twice.
    deadline = time.monotonic() + 30
    for i, n in enumerate(names):
        while time.monotonic() < deadline:
            r = sync(n, ports[i % 2], tokens[n])
            if r.returncode == 0 and outbox_empty(n):
                break
            time.sleep(0.5)
    settled = len(outcomes)
    round_(8, write=False)
    round_(9, write=False)
    late = [o for o in outcomes[settled:] if o[2] != 0]
    check("with PostgreSQL back, every sync works", not late, "\n".join(o[3] for o in late)[:1500])

    sessions_failed = [o for o in outcomes if o[2] != 0]
    unexplained = [o for o in sessions_failed if "retry after" not in o[3] and "offline" not in o[3]]
    check(f"every failed sync ({len(sessions_failed)}) was told to retry (or found no server)", not unexplained,
          "\n".join(o[3] for o in unexplained)[:1500])
    logs = open(path("server-a.log")).read() + open(path("server-b.log")).read()
    check("the servers' logs say the store was unavailable", 'end="unavailable: ' in logs)

    bad_writes = [o[3] for o in outcomes if o[2] == -1]
    check("every write on a tablet worked, PostgreSQL up or down", not bad_writes, "\n".join(bad_writes)[:1500])
    total = sum(writes.values())
    check(f"{total} writes made", total == tablets * 7, writes)
    full = [n for n in names if not outbox_empty(n)]
    check("every outbox is empty", not full, full)
    minutes = {n: minutes_of(n, "ola", "M1") for n in names}
    check(f"every tablet has Ola's M1 at {total} minutes: each write counted once",
          all(m == total for m in minutes.values()), minutes)
    ref = domain_dump(names[0])
    differ = [n for n in names if domain_dump(n) != ref]
    rows = sum(len(t[1]) for t in ref)
    check(f"every tablet holds the same rows ({len(ref)} tables, {rows} rows)", not differ and rows > 0, differ)
    log_checks(db)
    devices = int(psql(db, "SELECT count(*) FROM lindra_device"))
    check(f"every tablet pushed as a device of its own ({devices})", devices == tablets, devices)
    for p in (a, b):
        stop(p)


def readyz(admin):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def case_readyz(_server):
    """/readyz: 503 while PostgreSQL is down, 200 once it is back, the server running throughout."""
    db = start_cluster()
    run([args.server, "gen-key", "--out", path("token.key")])
    (p, _port) = start_server(db, "server", ["--admin-listen", "127.0.0.1:0"])
    log = open(path("server.log")).read()
    admin = int(re.search(r"^admin listening on 127\.0\.0\.1:(\d+)$", log, re.M).group(1))
    check("/readyz is 200 with PostgreSQL up", readyz(admin) == 200)
    r = pg_ctl("-m", "immediate", "stop")
    check("PostgreSQL stopped", r.returncode == 0, r.stdout + r.stderr)
    deadline = time.monotonic() + 20
    status = readyz(admin)
    while status != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = readyz(admin)
    check("/readyz is 503 while PostgreSQL is down", status == 503, status)
    r = pg_ctl("-o", cluster_options(cluster["port"], cluster["dir"]), "start")
    check("PostgreSQL started again", r.returncode == 0, r.stdout + r.stderr)
    deadline = time.monotonic() + 20
    status = readyz(admin)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = readyz(admin)
    check("/readyz is 200 again once PostgreSQL is back", status == 200, status)
    check("the server ran throughout", p.poll() is None)
    stop(p)


def main():
    global args, work
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--tablet", required=True)
    ap.add_argument("--case", required=True, choices=["conninfo", "restart", "timeout", "readyz"])
    args = ap.parse_args()
    server = os.environ.get("LINDRA_TEST_PG", "")
    if not server:
        print(f"SKIPPED: pg_fault_test --case {args.case} needs PostgreSQL and LINDRA_TEST_PG is not set.\n"
              "  scripts/test starts a throw-away server and sets it; by hand:\n"
              "  LINDRA_TEST_PG=postgresql://postgres@127.0.0.1:5432/postgres " + " ".join(sys.argv), file=sys.stderr)
        return SKIP
    if shutil.which("psql") is None:
        print("FAIL: psql is missing (Debian: apt-get install postgresql-client)")
        return 1
    work = tempfile.mkdtemp(prefix="lindra-pg-fault-")
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        {"conninfo": case_conninfo, "restart": case_restart, "timeout": case_timeout, "readyz": case_readyz}[args.case](server)
    except Exception:
        check("the test ran to its end", False, traceback.format_exc())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop_cluster()
        if os.environ.get("PG_FAULT_TEST_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
