"""The small part of MongoDB's wire protocol the Berth stand-in speaks: BSON for the common scalar
types, documents and arrays; OP_MSG (2013) requests and replies; the legacy OP_QUERY (2004) /
OP_REPLY (1) pair that older drivers use for their first `isMaster`."""

import datetime
import struct

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013


class BsonError(ValueError):
    pass


def _cstring(data, pos):
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("utf-8"), end + 1


def decode(data, pos=0):
    """Decodes the BSON document at data[pos:]; returns (dict, position after it)."""
    (size,) = struct.unpack_from("<i", data, pos)
    end = pos + size
    if size < 5 or end > len(data) or data[end - 1] != 0:
        raise BsonError("bad document length")
    pos += 4
    doc = {}
    while pos < end - 1:
        kind = data[pos]
        key, pos = _cstring(data, pos + 1)
        if kind == 0x01:
            (value,) = struct.unpack_from("<d", data, pos)
            pos += 8
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            value = data[pos + 4 : pos + 4 + n - 1].decode("utf-8")
            pos += 4 + n
        elif kind in (0x03, 0x04):
            value, pos = decode(data, pos)
            if kind == 0x04:
                value = [value[k] for k in sorted(value, key=int)]
        elif kind == 0x05:
            (n,) = struct.unpack_from("<i", data, pos)
            value = bytes(data[pos + 5 : pos + 5 + n])
            pos += 5 + n
        elif kind == 0x07:
            value = bytes(data[pos : pos + 12]).hex()
            pos += 12
        elif kind == 0x08:
            value = data[pos] != 0
            pos += 1
        elif kind == 0x09:
            (ms,) = struct.unpack_from("<q", data, pos)
            value = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
            pos += 8
        elif kind == 0x0A:
            value = None
        elif kind == 0x10:
            (value,) = struct.unpack_from("<i", data, pos)
            pos += 4
        elif kind in (0x11, 0x12):
            (value,) = struct.unpack_from("<q", data, pos)
            pos += 8
        else:
            raise BsonError(f"unsupported BSON type 0x{kind:02x} for key {key!r}")
        doc[key] = value
    return doc, end


def encode(doc):
    """Encodes a dict of str/bool/int/float/None/datetime/dict/list values as a BSON document."""
    out = bytearray()
    for key, value in doc.items():
        name = key.encode("utf-8") + b"\x00"
        if isinstance(value, bool):
            out += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            if -(2**31) <= value < 2**31:
                out += b"\x10" + name + struct.pack("<i", value)
            else:
                out += b"\x12" + name + struct.pack("<q", value)
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode("utf-8") + b"\x00"
            out += b"\x02" + name + struct.pack("<i", len(raw)) + raw
        elif value is None:
            out += b"\x0a" + name
        elif isinstance(value, datetime.datetime):
            out += b"\x09" + name + struct.pack("<q", int(value.timestamp() * 1000))
        elif isinstance(value, dict):
            out += b"\x03" + name + encode(value)
        elif isinstance(value, (list, tuple)):
            out += b"\x04" + name + encode({str(i): v for i, v in enumerate(value)})
        else:
            raise BsonError(f"cannot encode {type(value).__name__} for key {key!r}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\x00"


def header(length, request_id, response_to, opcode):
    return struct.pack("<iiii", length, request_id, response_to, opcode)


def op_msg(doc, request_id, response_to=0):
    body = struct.pack("<I", 0) + b"\x00" + encode(doc)
    return header(16 + len(body), request_id, response_to, OP_MSG) + body


def op_query(collection, doc, request_id):
    body = struct.pack("<i", 0) + collection.encode() + b"\x00" + struct.pack("<ii", 0, -1) + encode(doc)
    return header(16 + len(body), request_id, 0, OP_QUERY) + body


def op_reply(doc, request_id, response_to):
    body = struct.pack("<iqii", 0, 0, 0, 1) + encode(doc)
    return header(16 + len(body), request_id, response_to, OP_REPLY) + body


def read_message(sock):
    """Reads one message: returns (request_id, response_to, opcode, body) or None at end of stream."""
    head = _read_exactly(sock, 16)
    if head is None:
        return None
    length, request_id, response_to, opcode = struct.unpack("<iiii", head)
    if length < 16 or length > 48_000_000:
        raise BsonError(f"bad message length {length}")
    body = _read_exactly(sock, length - 16)
    if body is None:
        raise BsonError("connection closed inside a message")
    return request_id, response_to, opcode, body


def _read_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if not buf:
                return None
            raise BsonError("connection closed inside a message")
        buf += chunk
    return bytes(buf)


def msg_document(body):
    """The command document of an OP_MSG body (its kind-0 section; kind-1 sequences are merged in)."""
    (flags,) = struct.unpack_from("<I", body, 0)
    end = len(body) - (4 if flags & 1 else 0)
    pos = 4
    doc = None
    sequences = {}
    while pos < end:
        kind = body[pos]
        pos += 1
        if kind == 0:
            doc, pos = decode(body, pos)
        elif kind == 1:
            (size,) = struct.unpack_from("<i", body, pos)
            stop = pos + size
            ident, p = _cstring(body, pos + 4)
            items = []
            while p < stop:
                item, p = decode(body, p)
                items.append(item)
            sequences[ident] = items
            pos = stop
        else:
            raise BsonError(f"unknown OP_MSG section kind {kind}")
    if doc is None:
        raise BsonError("OP_MSG without a body section")
    doc.update(sequences)
    return doc


def query_document(body):
    """(collection, query document) of an OP_QUERY body; a {$query: …} wrapper is unwrapped."""
    collection, pos = _cstring(body, 4)
    doc, _ = decode(body, pos + 8)
    if "$query" in doc and isinstance(doc["$query"], dict):
        doc = doc["$query"]
    return collection, doc
