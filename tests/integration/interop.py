#!/usr/bin/env python3
"""Interoperability with an Avro implementation that is not ours: fastavro
writes and reads Avro single-object encoding, confluent-kafka carries it.

    interop.py produce  BOOTSTRAP PREFIX SCHEMA_DIR   (writes known readings)
    interop.py consume  BOOTSTRAP PREFIX SCHEMA_DIR N (reads N vehicle readings
                                                       ours wrote; prints JSON lines)
"""
import glob
import io
import json
import os
import struct
import sys
import time

import fastavro
from confluent_kafka import Consumer, Producer
from fastavro.schema import fingerprint, to_parsing_canonical_form


def load_schemas(schema_dir):
    """Every schema version we ship, by file name and by fingerprint."""
    by_name, by_fp = {}, {}
    for path in sorted(glob.glob(os.path.join(schema_dir, "*.avsc"))):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
        parsed = fastavro.parse_schema(raw)
        by_name[os.path.basename(path)] = (fp, parsed)
        by_fp[fp] = (os.path.basename(path), parsed)
    return by_name, by_fp


def encode(schema, record):
    fp, parsed = schema
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, record)
    return b"\xc3\x01" + fp + body.getvalue()


def client_config(role, **conf):
    """conf, plus the secured profile's settings for role (producer or
    consumer) that tests/integration/lib.sh gives in IT_KAFKA_PROPS_<ROLE>
    (k=v,k=v, as EIE_KAFKA_PROPERTIES) when the test runs against it."""
    for kv in filter(None, os.environ.get("IT_KAFKA_PROPS_" + role.upper(), "").split(",")):
        key, _, value = kv.partition("=")
        conf[key] = value
    return conf


def produce(bootstrap, prefix, schema_dir):
    by_name, _ = load_schemas(schema_dir)
    now = int(time.time() * 1000) // 60000 * 60000 - 120000
    p = Producer(client_config("producer", **{"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                               "acks": "all"}))
    failures = []
    report = lambda err, msg: failures.append(err) if err else None
    p.produce(prefix + "vehicle-assignments", key=b"PY1", on_delivery=report,
              value=encode(by_name["vehicle_meter_assignment.v1.avsc"],
                           {"vehicleId": "PY1", "meterId": "PYM1", "validFrom": now - 60000}))
    p.produce(prefix + "meter-readings", key=b"PYM1", on_delivery=report,
              value=encode(by_name["meter_reading.v1.avsc"],
                           {"meterId": "PYM1", "kwhConsumedAc": 1.25, "voltage": 229.5, "timestamp": now}))
    p.produce(prefix + "vehicle-readings", key=b"PY1", on_delivery=report,
              value=encode(by_name["vehicle_reading.v2.avsc"],
                           {"vehicleId": "PY1", "soc": 42.5, "kwhDeliveredDc": 1.125, "batteryTemp": 28.5,
                            "timestamp": now, "chargerId": "CH-7"}))
    p.produce(prefix + "vehicle-readings", key=b"PY2", on_delivery=report,
              value=encode(by_name["vehicle_reading.v1.avsc"],
                           {"vehicleId": "PY2", "soc": 10.0, "kwhDeliveredDc": 0.5, "batteryTemp": 20.0,
                            "timestamp": now}))
    left = p.flush(30)
    if left or failures:
        sys.exit(f"not acknowledged: {left} outstanding, errors {failures}")


def consume(bootstrap, prefix, schema_dir, count):
    _, by_fp = load_schemas(schema_dir)
    c = Consumer(client_config("consumer", **{"bootstrap.servers": bootstrap, "group.id": prefix + "interop-py",
                                               "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    c.subscribe([prefix + "vehicle-readings"])
    seen, deadline = 0, time.time() + 60
    while seen < count and time.time() < deadline:
        msg = c.poll(1.0)
        if msg is None or msg.error():
            continue
        value = msg.value()
        if value[:2] != b"\xc3\x01" or value[2:10] not in by_fp:
            sys.exit(f"not single-object encoding of a known schema: {value[:10].hex()}")
        name, schema = by_fp[value[2:10]]
        record = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
        # fastavro turns timestamp-millis into datetimes; compare epoch milliseconds
        record = {k: round(v.timestamp() * 1000) if hasattr(v, "timestamp") else v
                  for k, v in record.items()}
        print(json.dumps({"schema": name, "key": msg.key().decode(), **record}, sort_keys=True))
        seen += 1
    c.close()
    if seen < count:
        sys.exit(f"read {seen} of {count} records")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "produce":
        produce(*args)
    elif cmd == "consume":
        consume(args[0], args[1], args[2], int(args[3]))
    else:
        sys.exit(__doc__)
