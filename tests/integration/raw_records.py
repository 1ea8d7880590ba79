"""Raw Avro single-object records written by hand, for tests that send the
consumers what our own producers never would (bad framing, bad bodies, huge
ids). Independent of our codec on purpose: the fingerprints come from
tests/data/avro_vectors.tsv, which fastavro wrote."""
import struct

FINGERPRINTS = {}


def load(vectors_path):
    for line in open(vectors_path):
        if not line.startswith("#"):
            cols = line.rstrip("\n").split("\t")
            FINGERPRINTS[cols[0]] = struct.pack("<Q", int(cols[2], 16))


def zigzag(n):
    """Avro's long: zigzag, then 7 bits a byte."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        if n & ~0x7F:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        else:
            out.append(n)
            return bytes(out)


def header(schema_file):
    return b"\xc3\x01" + FINGERPRINTS[schema_file]


def vehicle(vehicle_id, soc, dc, temp, ts_ms):
    """A vehicle reading of schema v1 (no chargerId)."""
    v = vehicle_id.encode()
    return (header("vehicle_reading.v1.avsc") + zigzag(len(v)) + v +
            struct.pack("<ddd", soc, dc, temp) + zigzag(ts_ms))


def meter(meter_id, kwh, voltage, ts_ms):
    m = meter_id.encode()
    return header("meter_reading.v1.avsc") + zigzag(len(m)) + m + struct.pack("<dd", kwh, voltage) + zigzag(ts_ms)
