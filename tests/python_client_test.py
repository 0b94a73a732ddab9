#!/usr/bin/python3
"""The real lindra-server over TLS, driven by the Python reference client
(clients/python/lindra_client.py) as apps in other languages and attackers
would: framing limits, forged tokens, the authorization matrix, scope leaks
in pulls, purges, and the equivalence of refusals (a refused write tells
nothing of whether its row exists).

Usage: /usr/bin/python3 tests/python_client_test.py --server PATH_TO_lindra-server
           --tablet PATH_TO_lindra-tablet --pb-dir DIR_WITH_lindra/v1/sync_pb2.py
       PYTHON_CLIENT_TEST_KEEP=1 keeps the temporary directory.

Prints PASS/FAIL per check; exits 1 if any failed.
Every process it starts is stopped on the way out, and every wait is bounded.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from testlib import check, die_with_parent, make_tls_files, results, run  # noqa: E402

TOTAL_SECONDS = 100  # the whole run; ctest allows 150
IO_SECONDS = 10  # any one socket operation

args = None
c = None  # lindra_client, imported once --pb-dir is known
work = ""
server = None  # the lindra-server process
port = 0


# ---- reporting ----------------------------------------------------------------


def server_log_tail(n=15):
    try:
        with open(os.path.join(work, "server.log"), encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---- processes ------------------------------------------------------------------


def path(name):
    return os.path.join(work, name)


def start_server():
    global server, port
    run([args.server, "gen-key", "--out", path("token.key")])
    run([args.server, "gen-key", "--out", path("other.key")])  # a key the server does not know
    make_tls_files(work, "lindra python client test CA")
    run(["openssl", "pkey", "-in", path("token.key"), "-pubout", "-out", path("token.pub")])
    log = open(path("server.log"), "w")
    server = subprocess.Popen(
        [args.server, "--db", path("server.db"), "--listen", "127.0.0.1:0", "--token-key", path("token.key"),
         "--cert", path("server.pem"), "--key", path("server.key")],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    log.close()
    for _ in range(200):  # up to 10 s
        with open(path("server.log")) as f:
            for line in f:
                if line.startswith("listening on 127.0.0.1:"):
                    port = int(line.strip().rsplit(":", 1)[1])
                    return
        if server.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("the server did not start:\n" + server_log_tail())


def stop_server():
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def token(user, role, person=None, org=None, key="token.key"):
    cmd = [args.server, "issue-token", "--key", path(key), "--user", user, "--role", role, "--ttl", "1h"]
    if person:
        cmd += ["--person", str(person)]
    if org:
        cmd += ["--org", str(org)]
    return run(cmd).strip()


def tablet(*cmd):
    return run([args.tablet, "--db", path("coordinator-tablet.db"), *cmd])


# ---- the protocol ------------------------------------------------------------------


def connect(device):
    conn, _ = device.connect("127.0.0.1", port, path("ca.pem"), timeout=IO_SECONDS)
    return conn


def raw_connection():
    return c.Connection("127.0.0.1", port, cafile=path("ca.pem"), timeout=IO_SECONDS)


def sync(device, writes=(), **push_args):
    """One round: Hello, Push of `writes` (if any), pull everything. The PushAck."""
    with connect(device) as conn:
        ack = device.push(conn, writes, **push_args) if writes else None
        device.pull_all(conn)
        return ack


def hello_message(tok, device_id=None, versions=(1,)):
    m = c.pb.ClientMessage()
    m.hello.versions.extend(versions)
    m.hello.device_id = (device_id or uuid.uuid4()).bytes
    m.hello.token = tok
    m.hello.schema_version = c.SCHEMA_VERSION
    return m


def refused(conn, send):
    """`send(conn)`, then the server's answer must be one Error and a close.
    Returns (code name, message), or (what happened instead, "")."""
    try:
        send(conn)
        m = conn.recv()
    except (c.ConnectionClosed, OSError, c.ProtocolError) as e:
        return f"no Error frame ({type(e).__name__}: {e})", ""
    if m.WhichOneof("kind") != "error":
        return f"a {m.WhichOneof('kind')} instead of an Error", ""
    try:
        conn.recv()
        return "the connection stayed open after the Error", ""
    except c.ConnectionClosed:
        return c.pb.ErrorCode.Name(m.error.code), m.error.message
    except OSError as e:
        return f"no close after the Error ({type(e).__name__}: {e})", ""


def half_close(conn):
    """Ends the TCP stream under the TLS session without a close_notify, as a
    peer that dies mid-frame does; the session can still read."""
    dup = socket.socket(fileno=os.dup(conn.sock.fileno()))
    dup.shutdown(socket.SHUT_WR)
    dup.close()


# ---- tokens -----------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ed25519_sign(key_file, data):
    with open(path("signing-input"), "wb") as f:
        f.write(data)
    p = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", path(key_file), "-in",
                        path("signing-input")], capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(f"openssl pkeyutl failed: {p.stderr.decode()}")
    return p.stdout


def jwt(header, claims, sign):
    """A compact JWS: base64url(header) . base64url(claims) . base64url(sign(signing input))."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


def claims_of(person, user="ola", role="candidate", now=None, ttl=3600):
    now = int(time.time()) if now is None else now
    return {"iss": "lindra", "aud": "lindra", "sub": user, "iat": now, "nbf": now, "exp": now + ttl, "role": role,
            "person": str(person)}


# ---- scope checks --------------------------------------------------------------------


class World:
    """Who is in which group, from an admin's view of every row."""

    def __init__(self, rows):
        self.rows = rows
        self.active = {}  # group -> {person: role}, members not withdrawn
        self.everyone = {}  # group -> persons, withdrawn too
        for m in rows.of("membership").values():
            if m.get("deleted"):
                continue
            self.everyone.setdefault(m["group_id"], set()).add(m["person_id"])
            if m["status"] != "withdrawn":
                self.active.setdefault(m["group_id"], {})[m["person_id"]] = m["role"]

    def groups_of(self, person):
        return {g for g, members in self.active.items() if person in members}

    def groups_of_org(self, org):
        return {g for g, v in self.rows.of("mentor_group").items() if v.get("organization_id") == org}


def leaks(view, world, person, coordinator_org=None):
    """The rows in `view` its user may not read (README, "Who sees what")."""
    if coordinator_org:
        groups = world.groups_of(person) | world.groups_of_org(coordinator_org)
        persons = {person} | {p for g in world.groups_of_org(coordinator_org) for p in world.everyone.get(g, ())}
        persons |= {p for p, v in world.rows.of("person").items() if v.get("organization_id") == coordinator_org}
    else:
        groups = world.groups_of(person)
        persons = {person}
    for g in world.groups_of(person):
        persons |= set(world.active[g])

    def personal_ok(values, reflection):
        g, p = values.get("group_id"), values.get("person_id")
        if coordinator_org and g in world.groups_of_org(coordinator_org):
            return not reflection
        return g in world.groups_of(person) and (p == person or world.active[g].get(person) == "mentor")

    bad = []
    for name, row, v in view.rows.all():
        if name in ("organization", "course", "module"):
            ok = True
        elif name == "person":
            ok = row in persons
        elif name == "mentor_group":
            ok = row in groups
        elif name in ("membership", "gathering", "attendance", "mentor_confirmation"):
            ok = v.get("group_id") in groups
        elif name in ("module_progress", "certificate", "reflection"):
            ok = personal_ok(v, name == "reflection")
        else:
            ok = False
        if not ok:
            bad.append(f"{name} {row} {v}")
    return bad


# ---- the test ----------------------------------------------------------------------------


def main():
    global args, c, work
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--tablet", required=True)
    p.add_argument("--pb-dir", required=True)
    args = p.parse_args()
    args.server, args.tablet = (os.path.abspath(x) if os.path.exists(x) else x for x in (args.server, args.tablet))
    sys.path[:0] = [args.pb_dir, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python")]
    try:
        import lindra_client
    except ImportError as e:
        print(f"FAIL: cannot import the Python client ({e}); lindra's scripts install python3-protobuf "
              "(scripts/lib.sh), and the build generates sync_pb2 with protoc")
        return 1
    c = lindra_client

    def on_alarm(signum, frame):
        raise TimeoutError(f"the test ran over {TOTAL_SECONDS} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # ctest's timeout: clean up
    signal.alarm(TOTAL_SECONDS)
    work = tempfile.mkdtemp(prefix="lindra-python-client-")
    started = time.time()
    try:
        start_server()
        scenario()
    except Exception:
        check("the test ran to its end", False, traceback.format_exc() + "\nserver log:\n" + server_log_tail())
    finally:
        signal.alarm(0)
        stop_server()
        if os.environ.get("PYTHON_CLIENT_TEST_KEEP") == "1":
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"python_client_test: {results['pass']} passed, {results['fail']} failed, "
          f"{time.time() - started:.1f} s")
    return 1 if results["fail"] else 0


def scenario():
    # ---- a course seeded by lindra's own tablet CLI, read by the Python client ----
    admin_token = token("admin-1", "admin")
    tablet("init")
    tablet("seed-demo")
    tablet("sync", "--server", f"127.0.0.1:{port}", "--ca", path("ca.pem"), "--token", admin_token)

    admin = c.Device(admin_token)
    pages = []  # (change groups pulled so far, remaining) of each page
    conn, welcome = admin.connect("127.0.0.1", port, path("ca.pem"), timeout=IO_SECONDS)
    with conn:
        batches = admin.pull_all(conn, max_changes=5,  # small pages: cursors, has_more
                                 on_page=lambda pulled, remaining: pages.append((pulled, remaining)))
        check("ping: the server echoes the nonce", conn.ping(0xC0FFEE) == 0xC0FFEE)
    rows = admin.rows
    check("paged pull: several batches, has_more on all but the last",
          len(batches) > 2 and all(b.has_more for b in batches[:-1]) and not batches[-1].has_more,
          f"{len(batches)} batches")
    check("Welcome.pull_remaining: a fresh device is told before its first page how much there is, at least "
          "what it then pulls", welcome.pull_needed and pages and welcome.pull_remaining >= pages[-1][0] > 0,
          f"pull_remaining {welcome.pull_remaining}, pages {pages}")
    check("on_page: once a page, the groups pulled grow and the remaining ones fall to 0",
          len(pages) == len(batches) and pages[-1][1] == 0
          and all(a[0] < b[0] and a[1] > b[1] for a, b in zip([(0, welcome.pull_remaining)] + pages, pages)),
          f"pull_remaining {welcome.pull_remaining}, pages {pages}")
    check("the C++ tablet's writes decode: 8 modules, 4 people, 4 memberships, 4 gatherings",
          (len(rows.of("module")), len(rows.of("person")), len(rows.of("membership")), len(rows.of("gathering")))
          == (8, 4, 4, 4))
    fjellvik = rows.find("organization", name="Fjellvik kommune")
    course = rows.find("course", title="Palliative care basics")
    g1 = rows.find("mentor_group", name="Fjellvik nursing home group")
    m = {v["ordinal"]: r for r, v in rows.of("module").items()}
    gath1 = {v["ordinal"]: r for r, v in rows.of("gathering").items()}
    ola, kari, nils, mia = (rows.find("person", display_name=n)
                            for n in ("Ola Nordmann", "Kari Lie", "Nils Sæther", "Mia Haugen"))

    # ---- a second municipality and group, written by the Python client as an admin ----
    elvdal = uuid.uuid4()
    g2 = uuid.uuid4()
    siri, per, liv, cora = (uuid.uuid4() for _ in range(4))
    seed = [admin.write("organization", elvdal, name="Elvdal kommune", kind="municipality", parent_id=None)]
    for who, name, org, profession in ((siri, "Siri Dahl", elvdal, "nurse"), (per, "Per Hansen", elvdal, "assistant"),
                                       (liv, "Liv Berg", elvdal, "health_care_worker"),
                                       (cora, "Cora Berg", fjellvik, "other")):
        seed.append(admin.write("person", who, display_name=name, profession=profession, organization_id=org))
    seed.append(admin.write("mentor_group", g2, course_id=course, organization_id=elvdal, name="Elvdal home care group",
                            starts_on="2026-01-05", ends_on="2026-03-30", status="active"))
    for who, role in ((siri, "mentor"), (per, "candidate"), (liv, "candidate")):
        seed.append(admin.write("membership", group_id=g2, person_id=who, role=role, status="active"))
    g2_gathering = uuid.uuid4()
    seed.append(admin.write("gathering", g2_gathering, group_id=g2, ordinal=1, title="E1: Start", status="planned",
                            mode="digital", scheduled_at=1767607200000, module_id=m[1]))
    wrong_row = admin.write("membership", uuid.uuid4(), group_id=g2, person_id=cora, role="candidate",
                            status="active")
    with connect(admin) as conn:
        # Derived ids sent explicitly: the server checks them against the key fields.
        ack = admin.push(conn, seed + [wrong_row], omit_derived_rows=False)
    rejected = {r.seq: r for r in ack.rejected}
    check("the admin's writes are accepted, derived ids computed in Python included",
          ack.acked_seq == wrong_row.seq and list(rejected) == [wrong_row.seq], str(ack))
    check("a membership whose id does not match its keys is refused (invalid_argument)",
          wrong_row.seq in rejected and rejected[wrong_row.seq].code == c.pb.ERROR_CODE_INVALID_ARGUMENT
          and "does not match" in rejected[wrong_row.seq].reason, str(ack))
    sync(admin)

    tablet("sync", "--server", f"127.0.0.1:{port}", "--ca", path("ca.pem"), "--token", admin_token)
    roster = tablet("roster", str(g2))
    check("lindra's C++ tablet reads what the Python client wrote",
          all(n in roster for n in ("Siri Dahl", "Per Hansen", "Liv Berg")), roster)

    # ---- tokens from lindra-server issue-token; everyone's ordinary writes ----
    tokens = {name: token(name, role, person)
              for name, role, person in (("ola", "candidate", ola), ("kari", "candidate", kari),
                                         ("nils", "candidate", nils), ("mia", "mentor", mia),
                                         ("siri", "mentor", siri), ("per", "candidate", per),
                                         ("liv", "candidate", liv))}
    tokens["cora"] = token("cora", "coordinator", cora, org=fjellvik)
    devices = {name: c.Device(t) for name, t in tokens.items()}

    now_ms = int(time.time() * 1000)
    kari_d, per_d, siri_d, liv_d = (devices[n] for n in ("kari", "per", "siri", "liv"))
    sync(kari_d)
    ordinary = [
        (kari_d, [kari_d.write("module_progress", person_id=kari, module_id=m[1], group_id=g1,
                               progress=c.progress_value(1, "passed"), best_score=85, time_spent_s=600,
                               first_completed_at=now_ms),
                  kari_d.write("reflection", person_id=kari, group_id=g1, module_id=m[1], text="Kari's reflection")]),
        (per_d, [per_d.write("module_progress", person_id=per, module_id=m[1], group_id=g2,
                             progress=c.progress_value(1, "in_progress"), time_spent_s=300),
                 per_d.write("reflection", person_id=per, group_id=g2, text="Per's reflection")]),
        (siri_d, [siri_d.write("attendance", gathering_id=g2_gathering, person_id=per, group_id=g2, status="present"),
                  siri_d.write("mentor_confirmation", group_id=g2, person_id=per, mentor_id=siri,
                               confirmed_at=now_ms, statement="Per took part")]),
        (liv_d, [liv_d.write("reflection", person_id=liv, group_id=g2, text="Liv's reflection")]),
    ]
    for device, writes in ordinary:
        ack = sync(device, writes)
        check(f"{writes[0].entity} and more by their own writer are accepted",
              not ack.rejected and ack.acked_seq == writes[-1].seq, str(ack))
    sync(admin)

    protocol_basics(devices["ola"], kari_d, tokens)
    framing_limits(tokens["ola"])
    forged_tokens(ola, tokens)
    with connect(admin) as conn:
        batch = conn.pull(admin.cursor, 1000)
    check("bad frames and forged tokens wrote nothing (the admin's pull from its cursor is empty)",
          not batch.changes.groups and not batch.purges, str(batch))

    ids = dict(g1=g1, g2=g2, course=course, fjellvik=fjellvik, elvdal=elvdal, ola=ola, kari=kari, nils=nils, mia=mia,
               siri=siri, per=per, liv=liv, cora=cora, m=m, gath1=gath1, g2_gathering=g2_gathering)
    refusal_equivalence(tokens["ola"], admin, ids)
    authorization_matrix(devices, ids)
    sync(admin)
    scope_leaks(tokens, admin, ids)
    withdrawal_purges(liv_d, admin, ids)


def protocol_basics(ola_d, kari_d, tokens):
    sync(ola_d)
    welcome = connect_welcome(ola_d)
    check("Welcome names the token's user and role, and protocol version 1",
          welcome.user == "ola" and list(welcome.roles) == ["candidate"] and welcome.version == 1, str(welcome))
    conn = raw_connection()
    code, message = refused(conn, lambda k: k.send(hello_message(tokens["ola"], versions=(99,))))
    conn.close()
    check("Hello with only an unknown protocol version: UNSUPPORTED_VERSION", code == "ERROR_CODE_UNSUPPORTED_VERSION",
          f"{code} {message}")

    def push_first(k):
        w = c.Write("organization", uuid.uuid4(), {"name": "Before Hello"}, c.hlc_make(int(time.time() * 1000)), 1)
        m = c.pb.ClientMessage()
        m.push.first_seq = m.push.last_seq = 1
        m.push.changes.CopyFrom(c.encode_changes([w], push=True))
        k.send(m)
    conn = raw_connection()
    code, message = refused(conn, push_first)
    conn.close()
    check("a Push before Hello: UNAUTHENTICATED", code == "ERROR_CODE_UNAUTHENTICATED", f"{code} {message}")

    conn = raw_connection()
    code, message = refused(conn, lambda k: (k.hello(tokens["ola"], uuid.uuid4()), k.send(hello_message(tokens["ola"]))))
    conn.close()
    check("a second Hello: INVALID_ARGUMENT", code == "ERROR_CODE_INVALID_ARGUMENT", f"{code} {message}")

    conn = raw_connection()
    code, message = refused(conn, lambda k: k.send(hello_message(tokens["ola"], kari_d.id)))
    conn.close()
    check("the id of a device another user pushed from: PERMISSION_DENIED", code == "ERROR_CODE_PERMISSION_DENIED", f"{code} {message}")

    # Pages of one change resume from each cursor and end where one big pull ends.
    paged, whole = c.Device(tokens["ola"]), c.Device(tokens["ola"])
    with connect(paged) as conn:
        batches = paged.pull_all(conn, max_changes=1)
    with connect(whole) as conn:
        whole.pull_all(conn)
    check("a pull in pages of one write ends with the rows of one whole pull",
          len(batches) > 3 and sorted(map(str, paged.rows.all())) == sorted(map(str, whole.rows.all())),
          f"{len(batches)} batches")


def connect_welcome(device):
    conn, welcome = device.connect("127.0.0.1", port, path("ca.pem"), timeout=IO_SECONDS)
    conn.close()
    return welcome


def framing_limits(tok):
    def attempt(name, want, send):
        conn = raw_connection()
        try:
            code, message = refused(conn, send)
        finally:
            conn.close()
        check(f"framing: {name}: {want.replace('ERROR_CODE_', '')} and close", code == want, f"{code} {message}")

    def after_hello(then):
        def send(k):
            k.hello(tok, uuid.uuid4())
            then(k)
        return send

    attempt("a length over the 64 KiB allowed before Hello", "ERROR_CODE_FRAME_TOO_LARGE",
            lambda k: k.send_bytes(c.varint(64 * 1024 + 1)))
    attempt("a length over Welcome.limits.max_frame_bytes", "ERROR_CODE_FRAME_TOO_LARGE",
            after_hello(lambda k: k.send_bytes(c.varint(k.max_frame + 1))))
    attempt("a length of 2^64 - 1 (a 10-byte varint)", "ERROR_CODE_FRAME_TOO_LARGE",
            lambda k: k.send_bytes(b"\xff" * 9 + b"\x01"))
    attempt("a varint longer than 10 bytes", "ERROR_CODE_INVALID_ARGUMENT", lambda k: k.send_bytes(b"\x80" * 11))
    attempt("a truncated varint, then the peer's stream ends", "ERROR_CODE_INVALID_ARGUMENT",
            lambda k: (k.send_bytes(b"\x80\x80"), half_close(k)))
    attempt("a truncated body, then the peer's stream ends", "ERROR_CODE_INVALID_ARGUMENT",
            lambda k: (k.send_bytes(c.varint(100) + b"\x0a" * 10), half_close(k)))
    attempt("a frame that does not parse, before Hello", "ERROR_CODE_INVALID_ARGUMENT",
            lambda k: k.send_bytes(c.frame(b"\xff\xff\xff\xff")))
    attempt("an empty message (no kind)", "ERROR_CODE_INVALID_ARGUMENT", lambda k: k.send_bytes(c.frame(b"")))
    # 'G' declares a 71-byte frame, which arrives whole; it is no ClientMessage.
    attempt("an HTTP request after Hello", "ERROR_CODE_INVALID_ARGUMENT",
            after_hello(lambda k: k.send_bytes(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: x\r\n" * 20)))
    attempt("a frame that does not parse, after Hello", "ERROR_CODE_INVALID_ARGUMENT",
            after_hello(lambda k: k.send_bytes(c.frame(b"\x12\x05abc"))))

    def bad_ref(k):  # a ChangeSet whose ref points past its id table
        m = c.pb.ClientMessage()
        m.push.first_seq = m.push.last_seq = 1
        g = m.push.changes.groups.add(entity=10, row=1, hlc_delta=c.hlc_make(int(time.time() * 1000)), seq_delta=1)
        m.push.changes.ids.append(uuid.uuid4().bytes)
        g.fields.append(2)
        g.refs.append(7)
        k.send(m)
    attempt("a Push whose ref is outside its id table", "ERROR_CODE_INVALID_ARGUMENT", after_hello(bad_ref))


def forged_tokens(ola, tokens):
    now = int(time.time())
    with open(path("token.pub"), "rb") as f:
        public_pem = f.read()
    real = tokens["ola"]
    header, payload, signature = real.split(".")
    edited = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    edited["role"] = "admin"
    forged = {
        "alg none": jwt({"alg": "none", "typ": "JWT"}, claims_of(ola), lambda s: b""),
        "HS256 keyed with the server's public key": jwt(
            {"alg": "HS256", "typ": "JWT"}, claims_of(ola), lambda s: hmac.new(public_pem, s, hashlib.sha256).digest()),
        "expired an hour ago": jwt({"alg": "EdDSA", "typ": "JWT"}, claims_of(ola, now=now - 7200),
                                   lambda s: ed25519_sign("token.key", s)),
        "signed by another key": token("ola", "candidate", ola, key="other.key"),
        "payload edited to role admin": f"{header}.{b64url(json.dumps(edited).encode())}.{signature}",
        "no token": "",
    }
    # The control: the same Python signing, unexpired, is taken.
    good = jwt({"alg": "EdDSA", "typ": "JWT"}, claims_of(ola, user="ola-py"), lambda s: ed25519_sign("token.key", s))
    with raw_connection() as conn:
        welcome = conn.hello(good, uuid.uuid4())
    check("a token signed in Python with the server's key is taken (the control)", welcome.user == "ola-py")

    for name, forgery in forged.items():
        def hello_then_push(k):
            # Hello and a Push in one write: the Push must never be applied.
            m = c.pb.ClientMessage()
            m.push.first_seq = m.push.last_seq = 1
            w = c.Write("organization", uuid.uuid4(), {"name": "Forged"}, c.hlc_make(int(time.time() * 1000)), 1)
            m.push.changes.CopyFrom(c.encode_changes([w], push=True))
            k.send_bytes(c.frame(hello_message(forgery).SerializeToString()) + c.frame(m.SerializeToString()))
        conn = raw_connection()
        try:
            code, message = refused(conn, hello_then_push)
        finally:
            conn.close()
        check(f"forged token, {name}: UNAUTHENTICATED", code == "ERROR_CODE_UNAUTHENTICATED", f"{code} {message}")


# ---- authorization ---------------------------------------------------------------------------


def authorization_matrix(devices, ids):
    """Each role pushes writes it may and may not make (DESIGN §2, README "Who may change what")."""
    g1, g2, m, gath1 = ids["g1"], ids["g2"], ids["m"], ids["gath1"]
    ola, kari, mia, per, fjellvik, elvdal = (ids[k] for k in ("ola", "kari", "mia", "per", "fjellvik", "elvdal"))
    now_ms = int(time.time() * 1000)
    allowed, denied = "accepted", "ERROR_CODE_PERMISSION_DENIED"

    d = devices["ola"]
    candidate = [
        ("own progress", allowed, d.write("module_progress", person_id=ola, module_id=m[2], group_id=g1,
                                          progress=c.progress_value(1, "in_progress"), time_spent_s=60)),
        # Merged with the 60 above, this once overflowed inside the server.
        ("own progress with a time at the integer limit", "ERROR_CODE_INVALID_ARGUMENT",
         d.write("module_progress", person_id=ola, module_id=m[2], group_id=g1, time_spent_s=2**63 - 1)),
        ("own reflection", allowed, d.write("reflection", person_id=ola, group_id=g1, module_id=m[2],
                                            text="Ola's reflection")),
        ("own display name", allowed, d.write("person", ola, display_name="Ola Nordmann")),
        ("another candidate's progress", denied, d.write("module_progress", person_id=kari, module_id=m[3],
                                                         group_id=g1, best_score=100)),
        ("own progress in a group she is not in", denied, d.write("module_progress", person_id=ola, module_id=m[1],
                                                                  group_id=g2, best_score=100)),
        ("a reflection as another candidate", denied, d.write("reflection", person_id=kari, group_id=g1,
                                                              text="Forged reflection")),
        ("a gathering", denied, d.write("gathering", group_id=g1, ordinal=9, title="Ola's gathering",
                                        status="planned")),
        ("own attendance", denied, d.write("attendance", gathering_id=gath1[1], person_id=ola, group_id=g1,
                                           status="present")),
        ("own mentor confirmation", denied, d.write("mentor_confirmation", group_id=g1, person_id=ola, mentor_id=mia,
                                                    confirmed_at=now_ms)),
        ("a membership in another group", denied, d.write("membership", group_id=g2, person_id=ola, role="candidate",
                                                          status="active")),
        ("the group's name", denied, d.write("mentor_group", g1, name="Ola's group")),
        ("a course's title", denied, d.write("course", ids["course"], title="Ola's course")),
        ("a module", denied, d.write("module", course_id=ids["course"], ordinal=99, title="Ola's module")),
        ("an organization", denied, d.write("organization", name="Ola's organization", kind="care_unit",
                                            parent_id=fjellvik)),
        ("own profession", denied, d.write("person", ola, profession="nurse")),
        ("own certificate", denied, d.write("certificate", person_id=ola, course_id=ids["course"], group_id=g1,
                                            issued_at=now_ms, serial="FORGED-1")),
        ("own best score of 150", "ERROR_CODE_INVALID_ARGUMENT",
         d.write("module_progress", person_id=ola, module_id=m[3], group_id=g1, best_score=150)),
    ]
    d = devices["mia"]
    sync(d)
    mentor = [
        ("hold a gathering", allowed, d.write("gathering", gath1[1], status="held")),
        ("attendance in her group", allowed, d.write("attendance", gathering_id=gath1[1], person_id=ola, group_id=g1,
                                                     status="present")),
        ("a confirmation in her group", allowed, d.write("mentor_confirmation", group_id=g1, person_id=kari,
                                                         mentor_id=mia, confirmed_at=now_ms)),
        ("a new gathering in her group", allowed, d.write("gathering", group_id=g1, ordinal=5, title="G5: Extra",
                                                          status="planned")),
        ("a gathering in another group", denied, d.write("gathering", group_id=g2, ordinal=5, title="Mia's",
                                                         status="planned")),
        ("attendance in another group", denied, d.write("attendance", gathering_id=ids["g2_gathering"], person_id=per,
                                                        group_id=g2, status="absent")),
        ("attendance naming another group's gathering", denied,
         d.write("attendance", gathering_id=ids["g2_gathering"], person_id=ola, group_id=g1, status="present")),
        ("a candidate's progress", denied, d.write("module_progress", person_id=ola, module_id=m[4], group_id=g1,
                                                   best_score=100)),
        ("a candidate's reflection", denied, d.write("reflection", person_id=ola, group_id=g1, text="By Mia")),
        ("a membership", denied, d.write("membership", c.derive_id("membership", [g1, ola]), role="mentor")),
        ("the group's name", denied, d.write("mentor_group", g1, name="Mia's group")),
        ("a course's title", denied, d.write("course", ids["course"], title="Mia's course")),
        ("a certificate", denied, d.write("certificate", person_id=kari, course_id=ids["course"], group_id=g1,
                                          issued_at=now_ms, serial="FORGED-2")),
    ]
    d = devices["cora"]
    sync(d)
    newcomer, new_course = uuid.uuid4(), uuid.uuid4()
    coordinator = [
        ("a course", allowed, d.write("course", new_course, title="Cora's course", version="1", language="nb")),
        ("a module", allowed, d.write("module", course_id=new_course, ordinal=1, title="Cora's module",
                                      kind="elearning", required=True)),
        ("her organization's group", allowed, d.write("mentor_group", g1, name="Fjellvik nursing home group")),
        ("a person in her organization", allowed, d.write("person", newcomer, display_name="Nora Ny",
                                                          organization_id=fjellvik)),
        ("a membership in her organization's group", allowed,
         d.write("membership", group_id=g1, person_id=newcomer, role="candidate", status="registered")),
        ("a care unit under her organization", allowed, d.write("organization", name="Fjellvik care unit",
                                                                kind="care_unit", parent_id=fjellvik)),
        ("another organization's group", denied, d.write("mentor_group", g2, name="Cora's group")),
        ("a membership in another organization's group", denied,
         d.write("membership", group_id=g2, person_id=newcomer, role="candidate", status="active")),
        ("a person of another organization", denied, d.write("person", per, display_name="Per H.")),
        ("an organization under another one", denied, d.write("organization", name="Elvdal unit", kind="care_unit",
                                                               parent_id=elvdal)),
        ("a group in another organization", denied, d.write("mentor_group", course_id=ids["course"],
                                                            organization_id=elvdal, name="Cora's Elvdal group")),
        ("a gathering", denied, d.write("gathering", group_id=g1, ordinal=9, title="Cora's", status="planned")),
        ("a candidate's progress", denied, d.write("module_progress", person_id=ola, module_id=m[5], group_id=g1,
                                                   best_score=100)),
        ("a reflection", denied, d.write("reflection", person_id=ola, group_id=g1, text="By Cora")),
        ("a certificate", denied, d.write("certificate", person_id=ola, course_id=ids["course"], group_id=g1,
                                          issued_at=now_ms, serial="FORGED-3")),
    ]
    for role, name, cases in (("candidate", "ola", candidate), ("mentor", "mia", mentor),
                              ("coordinator", "cora", coordinator)):
        device = devices[name]
        writes = [w for _, _, w in cases]
        with connect(device) as conn:
            ack = device.push(conn, writes)
        got = {r.seq: r for r in ack.rejected}
        check(f"matrix, {role}: PushAck acknowledges every write", ack.acked_seq == writes[-1].seq, str(ack))
        for label, want, w in cases:
            r = got.get(w.seq)
            outcome = allowed if r is None else c.pb.ErrorCode.Name(r.code)
            check(f"matrix, {role}: {label}: {want.replace('ERROR_CODE_', '').lower()}", outcome == want,
                  f"got {outcome}" + (f": {r.reason}" if r else ""))
            if r is not None and r.code == c.pb.ERROR_CODE_PERMISSION_DENIED:
                quoted = [v for f, v in w.values.items()
                          if c.entity(w.entity).field(f).type == "text" and v in r.reason]
                check(f"matrix, {role}: {label}: the reason quotes no value", not quoted, r.reason)
        for label, want, w in cases:
            r = got.get(w.seq)
            if r is not None and r.code == c.pb.ERROR_CODE_INVALID_ARGUMENT:
                check(f"a refusal's reason quotes no value ({role}: {label})",
                      not any(str(v) in r.reason for v in w.values.values() if isinstance(v, int)), r.reason)
        # The server keeps the refusals only until the device says, in its
        # next Hello, that it has the answers.
        kept = refusals_kept(device)
        with connect(device):
            pass
        check(f"matrix, {role}: the server forgets the refusals once the next Hello says they were heard",
              kept == len(got) and refusals_kept(device) == 0, f"kept {kept}, then {refusals_kept(device)}")


def refusals_kept(device):
    """The refusals the server keeps for `device`, read from its SQLite store."""
    with sqlite3.connect(f"file:{path('server.db')}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM lindra_refused WHERE device_id = ?", (device.id.bytes,)).fetchone()[0]


def scope_leaks(tokens, admin, ids):
    """Fresh devices pull from the start: nothing outside what their user may read."""
    world = World(admin.rows)
    views = {}
    for name in ("ola", "kari", "mia", "per", "cora"):
        views[name] = c.Device(tokens[name])
        sync(views[name])
    for name, org in (("ola", None), ("kari", None), ("mia", None), ("per", None), ("cora", ids["fjellvik"])):
        bad = leaks(views[name], world, ids[name], coordinator_org=org)
        check(f"scope: {name}'s pull holds only rows {name} may read", not bad, "\n".join(bad[:10]))

    def texts(view):
        return {v["text"] for v in view.rows.of("reflection").values()}
    check("scope: ola's pull has her own reflection and progress (so the checks above can fail)",
          texts(views["ola"]) == {"Ola's reflection"} and views["ola"].rows.of("module_progress"))
    check("scope: the mentor's pull has her candidates' reflections and progress",
          {"Kari's reflection", "Ola's reflection"} <= texts(views["mia"])
          and views["mia"].rows.get("module_progress", c.derive_id("module_progress", [ids["kari"], ids["m"][1],
                                                                                         ids["g1"]])))
    check("scope: the coordinator's pull has progress and no reflection",
          not texts(views["cora"]) and views["cora"].rows.of("module_progress"))
    check("scope: no pull of group 1 holds a row of group 2",
          all(views[n].rows.get("mentor_group", ids["g2"]) is None for n in ("ola", "kari", "mia", "cora")))


def withdrawal_purges(liv_d, admin, ids):
    g2 = ids["g2"]
    check("liv holds her group's rows before her withdrawal",
          liv_d.rows.get("mentor_group", g2) is not None and liv_d.rows.of("reflection"))
    with connect(admin) as conn:
        ack = admin.push(conn, [admin.write("membership", group_id=g2, person_id=ids["liv"], status="withdrawn")])
    check("the admin withdraws liv", not ack.rejected, str(ack))
    with connect(liv_d) as conn:
        batches = liv_d.pull_all(conn)
    purged = {uuid.UUID(bytes=r) for b in batches for p in b.purges for r in p.rows}
    check("liv's next pull purges her group's rows",
          g2 in purged and c.derive_id("membership", [g2, ids["per"]]) in purged, f"{len(purged)} rows purged")
    left = [(n, r) for n, r, _ in liv_d.rows.all() if n not in ("organization", "course", "module")
            and not (n == "person" and r == ids["liv"])]
    check("after the purge liv holds the catalog and her own person row only", not left, str(left[:5]))


# ---- refusal equivalence ---------------------------------------------------


def refusal_equivalence(ola_token, admin, ids):
    """A candidate pushes to a row she cannot read, once where it exists and once
    where it does not: everything she observes must be the same."""
    g1, g2, m = ids["g1"], ids["g2"], ids["m"]
    kari, nils, per, liv = ids["kari"], ids["nils"], ids["per"], ids["liv"]
    progress = lambda who: c.derive_id("module_progress", [who, m[1], g1])  # noqa: E731
    # (name, entity, the existing row, the missing row, values; keys: a function of the target's person)
    probes = [
        ("module_progress best_score, by row id", "module_progress", progress(kari), progress(nils),
         lambda who: {"best_score": 1}),
        ("module_progress best_score, by key fields", "module_progress", progress(kari), progress(nils),
         lambda who: {"person_id": who, "module_id": m[1], "group_id": g1, "best_score": 1}),
        ("mentor_confirmation statement", "mentor_confirmation", c.derive_id("mentor_confirmation", [g2, per]),
         c.derive_id("mentor_confirmation", [g2, liv]), lambda who: {"statement": "probe"}),
        ("attendance note", "attendance", c.derive_id("attendance", [ids["g2_gathering"], per]),
         c.derive_id("attendance", [ids["g2_gathering"], liv]), lambda who: {"note": "probe"}),
        ("membership status", "membership", c.derive_id("membership", [g2, per]),
         c.derive_id("membership", [g2, kari]), lambda who: {"status": "withdrawn"}),
    ]
    targets = {progress(kari): kari, progress(nils): nils}
    for _, entity, present, absent, _ in probes:
        check(f"equivalence setup: the {entity} row exists, the other does not",
              admin.rows.get(entity, present) is not None and admin.rows.get(entity, absent) is None)

    # Every device pulls to the same head first; refused pushes add nothing to the log.
    pairs = [(c.Device(ola_token), c.Device(ola_token)) for _ in probes]
    for pair in pairs:
        for device in pair:
            sync(device)
    for (name, entity, present, absent, values), pair in zip(probes, pairs):
        hlc = pair[0].clock.tick()
        observed = []
        for device, row in zip(pair, (present, absent)):
            write = c.Write(entity, row, values(targets.get(row)), hlc, 1, device.id)
            observed.append(observe_refusal(device, write))
        keys = list(dict.fromkeys([*observed[0], *observed[1]]))
        differ = [k for k in keys if observed[0].get(k, (None,))[0] != observed[1].get(k, (None,))[0]]
        check(f"refusal equivalence: {name}: the same PushAck, pulls, purges, Welcome and errors",
              not differ, "; ".join(f"{k}: row exists: {observed[0].get(k, (0, '-'))[1]}, "
                                    f"row missing: {observed[1].get(k, (0, '-'))[1]}" for k in differ))


def summary(m):
    if isinstance(m, c.pb.PullBatch):
        rows = sum(len(p.rows) for p in m.purges)
        return (f"{len(m.purges)} purges of {rows} rows, {len(m.changes.groups)} change groups, "
                f"cursor {m.next_cursor.hex()}")
    return " ".join(str(m).split())


def observe_refusal(device, write):
    """What the device sees after pushing `write`: {what: (bytes to compare, a summary)}."""
    seen = {}

    def see(what, m):
        seen[what] = (m.SerializeToString(deterministic=True), summary(m))
    try:
        with connect(device) as conn:
            ack = conn.push([write])
            for r in ack.rejected:
                if r.row != write.row.bytes:
                    seen["rejected row"] = ("not the row pushed",) * 2
                r.row = b""  # the row pushed: the one thing the two probes differ in
            see("push ack", ack)
            batch = conn.pull(device.cursor, 1000)
            device.cursor = batch.next_cursor
            see("pull after the refusal", batch)
        conn, welcome = device.connect("127.0.0.1", port, path("ca.pem"), timeout=IO_SECONDS)
        with conn:
            # What says something about the device's rows; not the time
            # (server_hlc), nor fields added later, which may be times too.
            for field, _ in welcome.ListFields():
                if field.name not in ("version", "server_id", "user", "roles", "limits", "highest_seq",
                                      "pull_needed", "highest_hlc"):
                    welcome.ClearField(field.name)
            see("next Welcome", welcome)
            see("next pull", conn.pull(device.cursor, 1000))
    except (c.ServerError, c.ProtocolError, c.ConnectionClosed, OSError) as e:
        seen["error"] = (f"{type(e).__name__}: {e}",) * 2
    return seen


if __name__ == "__main__":
    sys.exit(main())
