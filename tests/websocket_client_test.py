#!/usr/bin/python3
"""The real lindra-server over wss://, driven by an independent WebSocket
client (Debian python3-websockets) speaking the protocol with the Python
reference client's messages (clients/python/lindra_client.py): a Hello and a
Pull, then what a bad peer sends (a text message, a message over the limit,
HTTP that is not an upgrade, a wrong path, an upgrade that never says Hello).

Usage: /usr/bin/python3 tests/websocket_client_test.py --server lindra-server
           --tablet lindra-tablet --pb-dir DIR_WITH_lindra/v1/sync_pb2.py
Prints PASS/FAIL per check; exits 1 if any failed. Every process it starts
is stopped on the way out, and every wait is bounded.
"""

import argparse
import asyncio
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from testlib import check, die_with_parent, make_tls_files, results, run  # noqa: E402

IO_SECONDS = 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--tablet", required=True)
    ap.add_argument("--pb-dir", required=True)
    args = ap.parse_args()
    sys.path[:0] = [args.pb_dir, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python")]
    import websockets  # noqa: E402 (Debian: python3-websockets)
    import lindra_client as c  # noqa: E402

    work = tempfile.mkdtemp(prefix="lindra-ws-")
    server = None

    def path(name):
        return os.path.join(work, name)

    try:
        run([args.server, "gen-key", "--out", path("token.key")])
        make_tls_files(work, "lindra ws test CA")
        log = open(path("server.log"), "w")
        server = subprocess.Popen(
            [args.server, "--db", path("server.db"), "--listen", "127.0.0.1:0", "--token-key", path("token.key"),
             "--cert", path("server.pem"), "--key", path("server.key"), "--hello-timeout", "2s"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        log.close()
        port = None
        for _ in range(200):  # up to 10 s
            with open(path("server.log")) as f:
                for line in f:
                    if line.startswith("listening on 127.0.0.1:"):
                        port = int(line.strip().rsplit(":", 1)[1])
            if port or server.poll() is not None:
                break
            time.sleep(0.05)
        if not port:
            raise RuntimeError("the server did not start:\n" + open(path("server.log")).read())
        admin = run([args.server, "issue-token", "--key", path("token.key"), "--user", "office", "--role", "admin",
                     "--ttl", "1h"]).strip()
        url = f"wss://127.0.0.1:{port}/lindra"

        # lindra's own client over wss:// writes what the Python client pulls.
        tablet = [args.tablet, "--db", path("office.db")]
        run(tablet + ["init"])
        run(tablet + ["seed-demo"])
        out = run(tablet + ["sync", "--server", url, "--ca", path("ca.pem"), "--token", admin])
        check("lindra-tablet syncs over wss://", "synced" in out, out)
        out = run(tablet + ["outbox"])
        check("its outbox is empty after the wss:// round", "outbox: 0" in out, out)

        tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=path("ca.pem"))

        def hello_message():
            m = c.pb.ClientMessage()
            m.hello.versions.append(c.PROTOCOL_VERSION)
            m.hello.device_id = uuid.uuid4().bytes
            m.hello.token = admin
            m.hello.schema_version = c.SCHEMA_VERSION
            m.hello.app = "websocket_client_test.py/1"
            return m.SerializeToString()

        def server_message(data):
            m = c.pb.ServerMessage()
            m.ParseFromString(data)
            return m

        async def hello_and_pull():
            async with websockets.connect(url, ssl=tls, open_timeout=IO_SECONDS, max_size=8 << 20) as ws:
                await ws.send(hello_message())
                welcome = server_message(await asyncio.wait_for(ws.recv(), IO_SECONDS))
                check("Hello over wss:// is welcomed", welcome.WhichOneof("kind") == "welcome", welcome)
                cursor, changes, rounds = b"", 0, 0
                while rounds < 100:
                    rounds += 1
                    m = c.pb.ClientMessage()
                    m.pull.cursor = cursor
                    await ws.send(m.SerializeToString())
                    reply = server_message(await asyncio.wait_for(ws.recv(), IO_SECONDS))
                    if reply.WhichOneof("kind") != "pull_batch":
                        check("Pull over wss:// gets a PullBatch", False, reply)
                        return
                    changes += len(c.decode_changes(reply.pull_batch.changes))
                    cursor = reply.pull_batch.next_cursor
                    if not reply.pull_batch.has_more:
                        break
                check("Pull over wss:// brings what lindra-tablet pushed", changes > 0, f"{changes} changes")
                m = c.pb.ClientMessage()
                m.ping.nonce = 42
                await ws.send(m.SerializeToString())
                pong = server_message(await asyncio.wait_for(ws.recv(), IO_SECONDS))
                check("Ping over wss:// gets its Pong", pong.WhichOneof("kind") == "pong" and pong.pong.nonce == 42,
                      pong)

        async def answer_to(payload):
            """What the server answers a first message `payload`, and how it ends."""
            async with websockets.connect(url, ssl=tls, open_timeout=IO_SECONDS, max_size=8 << 20) as ws:
                await ws.send(payload)
                try:
                    reply = server_message(await asyncio.wait_for(ws.recv(), IO_SECONDS))
                except websockets.ConnectionClosed as e:
                    return None, e
                try:
                    await asyncio.wait_for(ws.recv(), IO_SECONDS)
                    return reply, None
                except websockets.ConnectionClosed as e:
                    return reply, e

        async def silent():
            started = time.monotonic()
            async with websockets.connect(url, ssl=tls, open_timeout=IO_SECONDS) as ws:
                try:
                    await asyncio.wait_for(ws.recv(), IO_SECONDS)
                except websockets.ConnectionClosed:
                    pass
            return time.monotonic() - started

        asyncio.run(hello_and_pull())

        reply, closed = asyncio.run(answer_to("a text message"))
        check("a text message gets an Error and a close",
              reply is not None and reply.WhichOneof("kind") == "error" and "binary" in reply.error.message
              and closed is not None, f"{reply} {closed}")
        reply, closed = asyncio.run(answer_to(b"x" * (1 << 20)))
        check("a message over the limit gets FRAME_TOO_LARGE and a close",
              reply is not None and reply.WhichOneof("kind") == "error"
              and reply.error.code == c.pb.ErrorCode.Value("ERROR_CODE_FRAME_TOO_LARGE") and closed is not None,
              f"{reply} {closed}")
        took = asyncio.run(silent())
        check("an upgrade that never says Hello is cut at the Hello deadline", took < 6, f"{took:.1f} s")

        def https_get(target):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=IO_SECONDS)
            try:
                conn.request("GET", target)
                r = conn.getresponse()
                return r.status, r.read().decode()
            finally:
                conn.close()

        status, body = https_get("/lindra")
        check("plain HTTPS at the sync path gets 426 Upgrade Required", status == 426 and "WebSocket" in body,
              f"{status} {body}")
        status, body = https_get("/elsewhere")
        check("plain HTTPS elsewhere gets 404 naming the sync path", status == 404 and "/lindra" in body,
              f"{status} {body}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_SECONDS)
        try:
            conn.request("GET", "/lindra")
            r = conn.getresponse()
            status, body = r.status, r.read().decode()
        finally:
            conn.close()
        check("plain http:// on the TLS port gets 400 saying to use TLS", status == 400 and "TLS" in body,
              f"{status} {body}")
    except Exception as e:  # noqa: BLE001
        check("the test ran to its end", False, repr(e))
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if results["fail"] and os.path.exists(path("server.log")):
            print("server log:\n" + open(path("server.log")).read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"websocket_client_test: {results['pass']} passed, {results['fail']} failed")
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
