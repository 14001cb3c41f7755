"""Protobuf's wire format, the little the test scripts write and read by hand (grpcio's
generic calls need no protobuf package)."""


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(tag, value):
    """A length-delimited field holding `value` (str or bytes)."""
    data = value.encode() if isinstance(value, str) else value
    return varint(tag << 3 | 2) + varint(len(data)) + data


def int_field(tag, value):
    return varint(tag << 3) + varint(value)


def fields(data):
    """(tag, value) for each field of a message: ints for varints, bytes for the rest."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        tag, kind = key >> 3, key & 7
        if kind == 0:
            value, i = read_varint(data, i)
        elif kind == 2:
            length, i = read_varint(data, i)
            value, i = data[i : i + length], i + length
        else:
            raise ValueError(f"wire type {kind} not handled")
        yield tag, value


def read_varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i
