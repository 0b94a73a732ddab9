"""lindra's sync protocol in Python: the reference client for apps in other languages.

Written from proto/lindra/v1/sync.proto and its comments alone, with Python's
standard library and the protobuf runtime (Debian: python3-protobuf). Read it
top to bottom as a worked example of the wire format:

  1. the schema table: the entity and field tags values travel under;
  2. ids and clocks: 16-byte ids, derived row ids, hybrid logical clocks;
  3. ChangeSets: the compact encoding of changes in Push, PullBatch and Rejected;
  4. a connection: TLS, frames, Hello/Welcome, Push/PushAck, Pull/PullBatch,
     Ping/Pong, Error;
  5. a device: its id, outbox seqs, clock and pull cursor, and the rows it
     pulled, merged by the schema's rules.

What it leaves out, which a real app needs: durable storage (a device's id,
seqs, cursor and rows must survive a restart, each batch applied with its
cursor in one transaction), retries with backoff, and rolling back refused
writes (Rejected.current). The C++ library (lib/) does all of that.

The generated module comes from protoc, never from a checked-in copy:

  mkdir -p OUT && protoc -I proto --python_out=OUT proto/lindra/v1/sync.proto
  PYTHONPATH=OUT:clients/python python3 -c 'import lindra_client'

Run as a program it does one round as a device and prints what it pulled:

  python3 clients/python/lindra_client.py --server 127.0.0.1:PORT --ca ca.pem --token-file ola.token
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import ssl
import sys
import time
import uuid
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

try:
    from google.protobuf.message import DecodeError

    from lindra.v1 import sync_pb2 as pb
except ImportError as e:
    raise ImportError("lindra_client needs the protobuf runtime (Debian: python3-protobuf) and sync_pb2 from protoc: "
                      "mkdir -p OUT && protoc -I proto --python_out=OUT proto/lindra/v1/sync.proto, then "
                      f"PYTHONPATH=OUT ({e})") from e

PROTOCOL_VERSION = 1
SCHEMA_VERSION = 1  # lindra's data-model version this table describes (Hello.schema_version)
DEFAULT_MAX_FRAME = 4 << 20  # until Welcome.limits says otherwise

# ---- 1. the schema table ----------------------------------------------------
#
# Copied from lib/src/model/schema.cpp, where tags are never renumbered or
# reused, and enum value lists only grow at the end. A value travels in the
# ChangeGroup array its type picks:
#   ints:  integer, boolean (0/1), timestamp (ms since the Unix epoch),
#          progress (attempt * 256 + status index), enum (the value's index)
#   texts: text, date ("YYYY-MM-DD")
#   refs:  ref (an index into ChangeSet.ids)


@dataclasses.dataclass(frozen=True)
class Field:
    tag: int
    name: str
    type: str  # text, integer, boolean, enum, ref, timestamp, date, progress
    rule: str = "lww"  # lww, add_wins, max, min, counter, progress, tombstone
    values: Tuple[str, ...] = ()  # enum and progress statuses, in order
    key: bool = False  # part of the row's derived id


@dataclasses.dataclass(frozen=True)
class Entity:
    tag: int
    name: str
    fields: Tuple[Field, ...]
    derived_id: bool = False  # the id is derive_id(name, key fields in this order)

    def field(self, name_or_tag) -> Field:
        for f in self.fields:
            if f.name == name_or_tag or f.tag == name_or_tag:
                return f
        raise KeyError(f"{self.name} has no field {name_or_tag!r}")

    @property
    def keys(self) -> List[Field]:
        return [f for f in self.fields if f.key]


def _f(tag, name, type_, rule="lww", values=(), key=False):
    return Field(tag, name, type_, rule, tuple(values), key)


_DELETED = _f(1, "deleted", "boolean", "tombstone")
PROGRESS_STATUSES = ("not_started", "in_progress", "completed", "passed")

ENTITIES: Tuple[Entity, ...] = (
    Entity(1, "organization", (
        _DELETED, _f(2, "name", "text"),
        _f(3, "kind", "enum", values=("region", "municipality", "development_centre", "care_unit")),
        _f(4, "parent_id", "ref"))),
    Entity(2, "person", (
        _DELETED, _f(2, "display_name", "text"),
        _f(3, "profession", "enum", values=("assistant", "health_care_worker", "nurse", "other")),
        _f(4, "organization_id", "ref"))),
    Entity(3, "course", (
        _DELETED, _f(2, "title", "text"), _f(3, "version", "text"), _f(4, "language", "text"),
        _f(5, "required_gatherings", "integer"))),
    Entity(4, "module", (
        _DELETED, _f(2, "course_id", "ref"), _f(3, "ordinal", "integer"), _f(4, "title", "text"),
        _f(5, "kind", "enum", values=("elearning", "reflection", "practice")),
        _f(6, "required", "boolean"), _f(7, "pass_score", "integer"))),
    Entity(5, "mentor_group", (
        _DELETED, _f(2, "course_id", "ref"), _f(3, "organization_id", "ref"), _f(4, "name", "text"),
        _f(5, "starts_on", "date"), _f(6, "ends_on", "date"),
        _f(7, "status", "enum", values=("planned", "active", "completed", "cancelled")))),
    Entity(6, "membership", (
        _DELETED, _f(2, "group_id", "ref", key=True), _f(3, "person_id", "ref", key=True),
        _f(4, "role", "enum", values=("mentor", "candidate")),
        _f(5, "status", "enum", "add_wins", ("registered", "active", "withdrawn", "completed"))),
        derived_id=True),
    Entity(7, "gathering", (
        _DELETED, _f(2, "group_id", "ref"), _f(3, "ordinal", "integer"), _f(4, "title", "text"),
        _f(5, "scheduled_at", "timestamp"), _f(6, "mode", "enum", values=("in_person", "digital")),
        _f(7, "status", "enum", values=("planned", "held", "cancelled")), _f(8, "module_id", "ref"))),
    Entity(8, "attendance", (
        _DELETED, _f(2, "gathering_id", "ref", key=True), _f(3, "person_id", "ref", key=True),
        _f(4, "group_id", "ref"), _f(5, "status", "enum", values=("present", "absent", "excused")),
        _f(6, "note", "text")),
        derived_id=True),
    Entity(9, "module_progress", (
        _DELETED, _f(2, "person_id", "ref", key=True), _f(3, "module_id", "ref", key=True),
        _f(4, "group_id", "ref", key=True), _f(5, "progress", "progress", "progress", PROGRESS_STATUSES),
        _f(6, "best_score", "integer", "max"), _f(7, "time_spent_s", "integer", "counter"),
        _f(8, "first_completed_at", "timestamp", "min")),
        derived_id=True),
    Entity(10, "reflection", (
        _DELETED, _f(2, "person_id", "ref"), _f(3, "group_id", "ref"), _f(4, "module_id", "ref"),
        _f(5, "gathering_id", "ref"), _f(6, "text", "text"))),
    Entity(11, "mentor_confirmation", (
        _DELETED, _f(2, "group_id", "ref", key=True), _f(3, "person_id", "ref", key=True),
        _f(4, "mentor_id", "ref"), _f(5, "confirmed_at", "timestamp"), _f(6, "statement", "text")),
        derived_id=True),
    Entity(12, "certificate", (
        _DELETED, _f(2, "person_id", "ref", key=True), _f(3, "course_id", "ref", key=True),
        _f(4, "group_id", "ref", key=True), _f(5, "issued_at", "timestamp"), _f(6, "serial", "text"),
        _f(7, "signature", "text")),
        derived_id=True),
)
_BY_NAME = {e.name: e for e in ENTITIES}
_BY_TAG = {e.tag: e for e in ENTITIES}


def entity(name_or_tag) -> Entity:
    found = (_BY_TAG if isinstance(name_or_tag, int) else _BY_NAME).get(name_or_tag)
    if found is None:
        raise ProtocolError(f"unknown entity {name_or_tag!r}")
    return found


def _array_of(f: Field) -> str:
    return {"text": "texts", "date": "texts", "ref": "refs"}.get(f.type, "ints")


# ---- 2. ids and clocks ------------------------------------------------------


def derive_id(entity_name: str, parts: Sequence[uuid.UUID]) -> uuid.UUID:
    """The id every device gives the row keyed by `parts` (key fields in schema order).

    SHA-256 over the entity name, a NUL byte and the parts' 16 bytes each; the
    first 16 bytes of the digest, shaped as a UUID version 8 (RFC 9562).
    """
    digest = bytearray(hashlib.sha256(entity_name.encode() + b"\0" + b"".join(p.bytes for p in parts)).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(digest))


def row_id_of(entity_name: str, values: Dict[str, object]) -> uuid.UUID:
    """The derived id of a row of a derived-id entity, from its key values."""
    e = entity(entity_name)
    return derive_id(e.name, [values[f.name] for f in e.keys])


def hlc_make(ms: int, counter: int = 0) -> int:
    """A hybrid logical clock: 48 bits of ms since the Unix epoch, then a 16-bit counter."""
    return (ms << 16) | counter


def hlc_ms(hlc: int) -> int:
    return hlc >> 16


def progress_value(attempt: int, status: str) -> int:
    """A module_progress.progress value: the lattice (attempt, status) as one ordered integer."""
    return attempt * 256 + PROGRESS_STATUSES.index(status)


class Clock:
    """The device's hybrid logical clock: never behind the wall clock, never
    behind a clock it has seen (Welcome.server_hlc, pulled changes)."""

    def __init__(self):
        self.last = 0

    def observe(self, hlc: int) -> None:
        self.last = max(self.last, hlc)

    def tick(self) -> int:
        self.last = max(hlc_make(int(time.time() * 1000)), self.last + 1)
        return self.last


# ---- 3. ChangeSets ----------------------------------------------------------


@dataclasses.dataclass
class Write:
    """The changes of one local write: one row, one clock, one origin.

    `values` maps field names to Python values: str for text, date and enum,
    int for integer, boolean, timestamp and progress, uuid.UUID for ref, and
    None for "no value". A counter (time_spent_s) carries the origin's running
    total, never an increment, so a retried write counts once.
    """
    entity: str
    row: uuid.UUID
    values: Dict[str, object]
    hlc: int = 0
    seq: int = 0  # the outbox seq (Push only)
    origin: Optional[uuid.UUID] = None  # who wrote it (PullBatch, Rejected.current)


class _IdTable:
    def __init__(self, ids: Iterable[bytes] = ()):
        self.ids = []
        self.index: Dict[bytes, int] = {}
        for b in ids:
            if len(b) != 16:
                raise ProtocolError(f"an id table entry is {len(b)} bytes, not 16")
            self.ids.append(uuid.UUID(bytes=b))

    def add(self, id_: uuid.UUID) -> int:
        if id_.bytes not in self.index:
            self.index[id_.bytes] = len(self.ids)
            self.ids.append(id_)
        return self.index[id_.bytes]

    def at(self, i: int, what: str) -> uuid.UUID:
        if i >= len(self.ids):
            raise ProtocolError(f"{what} refers to id {i} of a table of {len(self.ids)}")
        return self.ids[i]


def encode_changes(writes: Sequence[Write], *, push: bool, omit_derived_rows: bool = True) -> pb.ChangeSet:
    """A ChangeSet with one group per write.

    In a Push (`push`), origins stay implicit (the device that said Hello) and
    groups carry seq deltas. A derived-id row's id is left out (row = 0) when
    the group carries every key field: the receiver derives it.
    """
    out = pb.ChangeSet()
    ids = _IdTable()
    prev_hlc = prev_seq = 0
    for w in writes:
        e = entity(w.entity)
        if not w.values:
            raise ValueError("a write without values")
        g = out.groups.add()
        g.entity = e.tag
        derivable = e.derived_id and all(isinstance(w.values.get(k.name), uuid.UUID) for k in e.keys)
        if omit_derived_rows and derivable and row_id_of(e.name, w.values) == w.row:
            g.row = 0
        else:
            g.row = ids.add(w.row) + 1
        g.hlc_delta = w.hlc - prev_hlc
        prev_hlc = w.hlc
        if push:
            g.seq_delta = w.seq - prev_seq
            prev_seq = w.seq
        else:
            g.origin = ids.add(w.origin) + 1
        for name, value in w.values.items():
            f = e.field(name)
            if value is None:
                g.nulls.append(f.tag)
                continue
            g.fields.append(f.tag)
            if f.type == "ref":
                g.refs.append(ids.add(value))
            elif f.type in ("text", "date"):
                g.texts.append(value)
            elif f.type == "enum":
                g.ints.append(f.values.index(value))
            else:
                g.ints.append(int(value))
    out.ids.extend(i.bytes for i in ids.ids)
    return out


def _wire_field(e: Entity, tag: int) -> Field:
    try:
        return e.field(tag)
    except KeyError:
        raise ProtocolError(f"{e.name}: unknown field tag {tag}") from None


def decode_changes(cs: pb.ChangeSet, *, push_origin: Optional[uuid.UUID] = None) -> List[Write]:
    """The writes of a ChangeSet. Pass `push_origin` to read a Push (origins implicit)."""
    ids = _IdTable(cs.ids)
    writes = []
    hlc = seq = 0
    for g in cs.groups:
        e = entity(g.entity)
        hlc += g.hlc_delta
        seq += g.seq_delta
        if hlc <= 0:
            raise ProtocolError(f"{e.name} change group: the hlc deltas leave the range of a clock")
        if push_origin is not None:
            origin = push_origin
        elif g.origin == 0:
            raise ProtocolError("a change group without origin")
        else:
            origin = ids.at(g.origin - 1, "origin")
        values: Dict[str, object] = {}
        taken = {"ints": 0, "texts": 0, "refs": 0}
        for tag in g.fields:
            f = _wire_field(e, tag)
            array = _array_of(f)
            pos = taken[array]
            items = getattr(g, array)
            if pos >= len(items):
                raise ProtocolError(f"{e.name}.{f.name}: the group has fewer values than fields")
            taken[array] += 1
            raw = items[pos]
            if f.type == "ref":
                values[f.name] = ids.at(raw, f"{e.name}.{f.name}")
            elif f.type == "enum":
                if not 0 <= raw < len(f.values):
                    raise ProtocolError(f"{e.name}.{f.name}: enum index {raw} is not one of its values")
                values[f.name] = f.values[raw]
            else:
                values[f.name] = raw
        if taken != {"ints": len(g.ints), "texts": len(g.texts), "refs": len(g.refs)}:
            raise ProtocolError(f"{e.name} change group: more values than fields")
        for tag in g.nulls:
            values[_wire_field(e, tag).name] = None
        if not values:
            raise ProtocolError(f"{e.name} change group without fields")
        if g.row:
            row = ids.at(g.row - 1, f"{e.name} row")
        elif e.derived_id and all(isinstance(values.get(k.name), uuid.UUID) for k in e.keys):
            row = row_id_of(e.name, values)
        else:
            raise ProtocolError(f"{e.name} change group without its row id or key fields")
        writes.append(Write(e.name, row, values, hlc, seq, origin))
    return writes


# ---- 4. a connection ----------------------------------------------------------


class ProtocolError(Exception):
    """The server sent something this client cannot read."""


class ServerError(Exception):
    """The server sent Error (and closes the connection)."""

    def __init__(self, error: pb.Error):
        # The enum is closed: a code this client does not know (a newer server's) reads as internal.
        known = error.code in pb.ErrorCode.values()
        self.code = pb.ErrorCode.Name(error.code if known else pb.ERROR_CODE_INTERNAL)
        self.message = error.message
        self.retry_after_ms = error.retry_after_ms
        super().__init__(f"{self.code}: {self.message}")


class ConnectionClosed(Exception):
    """The server closed the connection (with no Error frame)."""


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint: 7 bits a byte, least significant first."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(body: bytes) -> bytes:
    """A frame: the body's length as a varint, then the body."""
    return varint(len(body)) + body


def tls_context(cafile: str) -> ssl.SSLContext:
    """TLS 1.2 or newer, trusting the CA that signed the server's certificate
    and checking the certificate's name (an IP address works too)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Connection:
    """One connection to a lindra server: frames of ClientMessage out,
    ServerMessage in. One thread at a time."""

    def __init__(self, host: str, port: int, *, cafile: Optional[str] = None, insecure: bool = False,
                 timeout: float = 10.0):
        raw = socket.create_connection((host, port), timeout=timeout)
        # Each message is one write; the server's reply should not wait for a delayed ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if insecure:
            self.sock = raw
        else:
            try:
                self.sock = tls_context(cafile).wrap_socket(raw, server_hostname=host)
            except BaseException:
                raw.close()
                raise
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_pull_changes = 0  # from Welcome.limits
        self._buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- frames --

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: pb.ClientMessage) -> None:
        self.send_bytes(frame(message.SerializeToString()))

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError) as e:  # closed without TLS close_notify
            raise ConnectionClosed(f"the server closed the connection ({e})") from e
        if not chunk:
            raise ConnectionClosed("the server closed the connection")
        self._buffer += chunk

    def recv_frame(self) -> bytes:
        """The next frame's body, the length checked before reading the body."""
        length = shift = pos = 0
        while True:
            while pos >= len(self._buffer):
                self._fill()
            byte = self._buffer[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if pos == 10:
                raise ProtocolError("frame length varint is longer than 10 bytes")
        if length > self.max_frame:
            raise ProtocolError(f"frame of {length} bytes is over the limit of {self.max_frame}")
        while len(self._buffer) < pos + length:
            self._fill()
        body = bytes(self._buffer[pos:pos + length])
        del self._buffer[:pos + length]
        return body

    def recv(self) -> pb.ServerMessage:
        body = self.recv_frame()
        m = pb.ServerMessage()
        try:
            m.ParseFromString(body)
        except DecodeError as e:
            raise ProtocolError(f"malformed server message: {e}") from e
        return m

    def expect(self, kind: str):
        """The next message, which must be `kind`; Error raises ServerError."""
        m = self.recv()
        got = m.WhichOneof("kind")
        if got == "error":
            raise ServerError(m.error)
        if got != kind:
            raise ProtocolError(f"expected {kind}, got {got}")
        return getattr(m, kind)

    # -- messages --

    def hello(self, token: str, device_id: uuid.UUID, cursor: bytes = b"", *, app: str = "lindra_client.py/1",
              versions: Sequence[int] = (PROTOCOL_VERSION,), acked_seq: int = 0) -> pb.Welcome:
        m = pb.ClientMessage()
        m.hello.versions.extend(versions)
        m.hello.device_id = device_id.bytes
        m.hello.token = token
        m.hello.schema_version = SCHEMA_VERSION
        m.hello.app = app
        m.hello.cursor = cursor
        m.hello.acked_seq = acked_seq
        self.send(m)
        welcome = self.expect("welcome")
        if welcome.HasField("limits"):
            self.max_frame = welcome.limits.max_frame_bytes or self.max_frame
            self.max_pull_changes = welcome.limits.max_pull_changes
        return welcome

    def push(self, writes: Sequence[Write], *, omit_derived_rows: bool = True) -> pb.PushAck:
        m = pb.ClientMessage()
        m.push.first_seq = writes[0].seq
        m.push.last_seq = writes[-1].seq
        m.push.changes.CopyFrom(encode_changes(writes, push=True, omit_derived_rows=omit_derived_rows))
        self.send(m)
        return self.expect("push_ack")

    def pull(self, cursor: bytes, max_changes: int = 0, include_own: bool = False) -> pb.PullBatch:
        m = pb.ClientMessage()
        m.pull.cursor = cursor
        m.pull.max_changes = max_changes
        m.pull.include_own = include_own
        self.send(m)
        return self.expect("pull_batch")

    def ping(self, nonce: int) -> int:
        m = pb.ClientMessage()
        m.ping.nonce = nonce
        self.send(m)
        return self.expect("pong").nonce


# ---- 5. a device ------------------------------------------------------------


@dataclasses.dataclass
class _FieldState:
    value: object = None
    clock: Tuple[int, bytes] = (0, b"")  # (hlc, origin)
    totals: Dict[bytes, int] = dataclasses.field(default_factory=dict)  # counters: origin -> running total


def _sortable(v):
    """Values in the order lindra's C++ code compares them: no value, numbers, texts, ids."""
    if v is None:
        return (0,)
    if isinstance(v, int):
        return (1, v)
    if isinstance(v, str):
        return (2, v.encode())
    return (3, v.bytes)


def _order(f: Field, value, cur) -> int:
    """> 0 if `value` beats `cur` under a max, min, progress or tombstone rule."""
    if f.rule == "min":  # the earliest time wins; no value loses to every number
        if value is None or cur is None:
            return 0 if value is cur else (-1 if value is None else 1)
        return (cur > value) - (cur < value)
    if value is None or cur is None:  # no value is below every number
        return (value is not None) - (cur is not None)
    return (value > cur) - (value < cur)


def _merge(f: Field, cur: _FieldState, value, clock: Tuple[int, bytes]) -> None:
    """One field's merge rule (README, "Data model and merge rules"; lib/src/model/merge.cpp)."""
    if f.rule == "counter":
        origin = clock[1]
        cur.totals[origin] = max(cur.totals.get(origin, value), value)
        cur.value = sum(cur.totals.values())
        cur.clock = max(cur.clock, clock)
    elif f.rule in ("max", "min", "progress", "tombstone"):
        order = _order(f, value, cur.value)
        if order > 0:
            cur.value, cur.clock = value, clock
        elif order == 0:
            cur.clock = max(cur.clock, clock)
    else:  # lww, add_wins: the later (hlc, origin) wins; add_wins: on equal hlc an add beats a withdraw
        def key(v, c):
            return (c[0], f.rule == "add_wins" and v != "withdrawn", c[1])
        new, old = key(value, clock), key(cur.value, cur.clock)
        if cur.clock[0] == 0 or new > old or (new == old and _sortable(value) > _sortable(cur.value)):
            cur.value, cur.clock = value, clock


class Rows:
    """The rows a device holds, by entity and id, merged field by field."""

    def __init__(self):
        self._rows: Dict[Tuple[str, uuid.UUID], Dict[str, _FieldState]] = {}

    def apply(self, w: Write) -> None:
        e = entity(w.entity)
        row = self._rows.setdefault((e.name, w.row), {})
        for name, value in w.values.items():
            _merge(e.field(name), row.setdefault(name, _FieldState()), value, (w.hlc, w.origin.bytes))

    def purge(self, row_ids: Iterable[uuid.UUID]) -> int:
        gone = set(row_ids)
        doomed = [k for k in self._rows if k[1] in gone]
        for k in doomed:
            del self._rows[k]
        return len(doomed)

    def get(self, entity_name: str, row: uuid.UUID) -> Optional[Dict[str, object]]:
        fields = self._rows.get((entity_name, row))
        return None if fields is None else {n: s.value for n, s in fields.items()}

    def of(self, entity_name: str) -> Dict[uuid.UUID, Dict[str, object]]:
        return {k[1]: self.get(*k) for k in self._rows if k[0] == entity_name}

    def all(self):
        """(entity, row id, values) of every row held."""
        return [(k[0], k[1], self.get(*k)) for k in self._rows]

    def find(self, entity_name: str, **match) -> uuid.UUID:
        """The one row of `entity_name` whose values include `match`."""
        hits = [r for r, v in self.of(entity_name).items() if all(v.get(k) == x for k, x in match.items())]
        if len(hits) != 1:
            raise LookupError(f"{len(hits)} {entity_name} rows match {match}")
        return hits[0]


class Device:
    """One device of one user: what it must keep between rounds (in memory here)."""

    def __init__(self, token: str, device_id: Optional[uuid.UUID] = None):
        self.token = token
        self.id = device_id or uuid.uuid4()
        self.clock = Clock()
        self.last_seq = 0  # the highest outbox seq used
        self.acked_seq = 0  # the highest seq whose PushAck was received (Hello tells the server)
        self.cursor = b""
        self.rows = Rows()

    def connect(self, host: str, port: int, cafile: Optional[str], **kw) -> Tuple[Connection, pb.Welcome]:
        conn = Connection(host, port, cafile=cafile, **kw)
        try:
            welcome = conn.hello(self.token, self.id, self.cursor, acked_seq=self.acked_seq)
        except BaseException:
            conn.close()
            raise
        self.clock.observe(welcome.server_hlc)
        # Seqs the server already holds from this id (a restored backup) are never reused.
        self.last_seq = max(self.last_seq, welcome.highest_seq)
        return conn, welcome

    def write(self, entity_name: str, row: Optional[uuid.UUID] = None, **values) -> Write:
        """A new local write (not yet pushed): a new id, or the derived one, unless `row` is given."""
        e = entity(entity_name)
        if row is None:
            row = row_id_of(e.name, values) if e.derived_id else uuid.uuid4()
        self.last_seq += 1
        return Write(e.name, row, values, self.clock.tick(), self.last_seq, self.id)

    def push(self, conn: Connection, writes: Sequence[Write], **kw) -> pb.PushAck:
        ack = conn.push(writes, **kw)
        self.acked_seq = max(self.acked_seq, ack.acked_seq)
        refused = {r.seq for r in ack.rejected}
        for w in writes:
            if w.seq not in refused:
                self.rows.apply(w)
        return ack

    def apply(self, batch: pb.PullBatch) -> None:
        """Purges first, then the changes, then the cursor (one transaction in a real app)."""
        for p in batch.purges:
            self.rows.purge(uuid.UUID(bytes=r) for r in p.rows)
        for w in decode_changes(batch.changes):
            self.clock.observe(w.hlc)
            self.rows.apply(w)
        self.cursor = batch.next_cursor

    def pull_all(self, conn: Connection, max_changes: Optional[int] = None, max_batches: int = 10000,
                 on_page: Optional[Callable[[int, int], None]] = None) -> List[pb.PullBatch]:
        """Pulls until the server has nothing more; batches of up to `max_changes`
        (default: the server's limit; the server sends at least one whole write).

        `on_page(pulled, remaining)` is called after each batch is applied:
        the change groups pulled so far, and PullBatch.remaining, the change
        groups the server's log still holds after it (an upper bound: groups
        this user may not read count too; 0 from a server that cannot tell).
        Welcome.pull_remaining is the same count before the first batch.
        """
        batches = []
        pulled = 0
        for _ in range(max_batches):
            batch = conn.pull(self.cursor, conn.max_pull_changes if max_changes is None else max_changes)
            self.apply(batch)
            batches.append(batch)
            pulled += len(batch.changes.groups)
            if on_page is not None:
                on_page(pulled, batch.remaining)
            if not batch.has_more:
                return batches
        raise ProtocolError(f"the pull did not end within {max_batches} batches")


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description="One sync round as a fresh device: Hello, pull everything, print it.")
    p.add_argument("--server", required=True, help="HOST:PORT")
    p.add_argument("--ca", help="PEM file of the CA that signed the server's certificate")
    p.add_argument("--token-file", required=True)
    p.add_argument("--insecure", action="store_true", help="plain TCP (a server started with --insecure)")
    a = p.parse_args(argv)
    host, _, port = a.server.rpartition(":")
    with open(a.token_file, encoding="ascii") as f:
        device = Device(f.read().strip())
    conn, welcome = device.connect(host, int(port), a.ca, insecure=a.insecure)
    with conn:
        print(f"welcome {welcome.user} ({', '.join(welcome.roles)}), protocol {welcome.version}")
        # Change groups (writes) of the server's log: an upper bound, since
        # those this user may not read count too.
        if welcome.pull_remaining:
            print(f"at most {welcome.pull_remaining} change groups to pull")
        elif welcome.pull_needed:
            print("changes to pull (the server does not say how many)")
        else:
            print("nothing to pull")
        counted = welcome.pull_remaining > 0

        def page(pulled, remaining):
            print(f"pulled {pulled} change groups" + (f", at most {remaining} to go" if counted else ""), flush=True)
        batches = device.pull_all(conn, on_page=page if sys.stdout.isatty() else None)
        print(f"ping: {conn.ping(42) == 42}")
    print(f"{len(batches)} batches")
    for name, row, values in sorted(device.rows.all(), key=lambda r: (entity(r[0]).tag, str(r[1]))):
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        print(f"{name} {row}: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
