#!/usr/bin/env python3
"""Writes the harnesses' seed corpora under tests/fuzz/corpus/<harness>/.

Seeds are small, real inputs: the Avro test vectors (tests/data/avro_vectors.tsv)
as binary messages, the README's readings in JSON and CSV, the times, query
parameters, cursors and URLs the API documents, and a few near misses of each.
Files are named after their content's hash, so running this again changes
nothing; it never removes a file, so inputs that reproduced a fixed defect
(named repro-*) stay.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for seed in seeds:
        data = seed.encode() if isinstance(seed, str) else seed
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def avro_vectors():
    out = []
    with open(os.path.join(ROOT, "tests", "data", "avro_vectors.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            out.append(bytes.fromhex(line.split("\t")[3]))
    return out


def codec_seeds():
    vectors = avro_vectors()
    seeds = list(vectors)
    v = vectors[0]
    seeds += [
        v[:10],                              # header only
        v[:-1],                              # body cut short
        v + b"\x00",                         # a byte after the body
        b"\xc3\x01" + b"\x00" * 8 + v[10:],  # a fingerprint nobody has
        b"\xc3\x02" + v[2:],                 # wrong marker
        v[:10] + b"\x80\x01" + v[12:],       # id length larger than the body
        vectors[3][:-4] + b"\x04\x00",       # v2 charger union: bad branch
    ]
    return seeds


JSON = [
    '{"meterId":"M1","kwhConsumedAc":0.25,"voltage":230.1,"timestamp":"2026-02-09T13:08:00Z"}',
    '{"vehicleId":"V1","soc":80.5,"kwhDeliveredDc":0.22,"batteryTemp":34.2,'
    '"timestamp":"2026-02-09T13:08:00Z"}',
    '{"vehicleId":"V1","meterId":"M1","validFrom":"2026-02-09T00:00:00Z"}',
    '{"vehicleId":"V2","soc":12.5,"kwhDeliveredDc":0.75,"batteryTemp":-3.5,'
    '"timestamp":1770642540000,"chargerId":"C-17"}',
    '{"vehicleId":"V3","soc":50,"kwhDeliveredDc":0,"batteryTemp":20,'
    '"timestamp":"2026-02-09T13:08:00.123+01:00","chargerId":null}',
    '[{"meterId":"M1","kwhConsumedAc":0.25,"voltage":230.1,"timestamp":1770642480000},'
    '{"meterId":"M2","kwhConsumedAc":101,"voltage":230.1,"timestamp":"2026-02-09T13:08:00Z"}]',
    '{"vehicleId":"V\\u00e9hicule-7","meterId":"M7","validFrom":1770642480000}',
    '{"meterId":"","kwhConsumedAc":-1,"voltage":"230","timestamp":"1999-12-31T23:59:59Z"}',
    '{"meterId":"M\\u0000","kwhConsumedAc":1e308,"voltage":1500,"timestamp":true}',
    '[]', '{}', '[1,"x",null]',
]

CSV = [
    "meterId,kwhConsumedAc,voltage,timestamp\nM1,0.25,230.1,2026-02-09T13:08:00Z\n",
    "vehicleId,soc,kwhDeliveredDc,batteryTemp,timestamp,chargerId\r\n"
    "V1,80.5,0.22,34.2,2026-02-09T13:08:00Z,C-17\r\nV2,12.5,0.75,-3.5,1770642540000,\r\n",
    'vehicleId,meterId,validFrom\n"V""1","M,1",2026-02-09T00:00:00Z\n"V2",M2,1770642480000\n',
    'meterId,kwhConsumedAc,voltage,timestamp\n"M1" ,1, 230,x\n"unterminated,1,2,3\n',
    "meterId,meterId,,timestamp\nM1,M2,3,4\n",
    "soc\n nan\n1e999\n0x10\n",
]

TIMES = [
    "2026-02-09T13:08:00Z", "2026-02-09T13:08:00.123Z", "2026-02-09t13:08:00.123456789z",
    "2026-02-09 13:08:00+05:30", "2024-02-29T23:59:60-23:59", "0000-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
    "2026-02-09T13:08:00", "2026-02-09T13:08:00.Z", "2026-02-09T24:00:00Z",
    struct.pack("<q", -(2**63)), struct.pack("<q", 2**63 - 1), struct.pack("<q", -1),
    struct.pack("<q", 1770642480123),
]

# Lines: window, from, to, step, staleFor, socBelow, limit, charging, vehicleId, meterId
PARAMS = [
    "24h\n\n\n15m\n1h\n50\n100\ntrue\nV1\nM1",
    "\n2026-02-09T00:00:00Z\n2026-02-10T00:00:00Z\n60m\n\n\n\n\n\n",
    "30d\n\n\n\n3650d\n100.0\n1000\nfalse\nV\xc3\xa9hicule-7\nM7",
    "14m\n2026-02-09T00:00:00Z\n\n0m\n07h\n-0\n0\nyes\n\nM\x01",
    "31d\n2026-02-09T00:00:00Z\n2026-02-08T00:00:00Z\n999999999d\n1d\nnan\n1e3\n\n" + "x" * 65,
    "\n2026-01-01T00:00:00Z\n2026-02-09T00:00:00Z\n1m\n\ninf\n -5\nTrue",
]

CURSORS = [
    "V1", "V9999", "V\xc3\xa9hicule-7", "x" * 64, "x" * 65, "\xe2\x82\xac", "\xf0\x9f\x9a\x97",
    "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x7fb", "a\x1fb", "\xc2\x9f",
]

URLS = [
    (0, "/v1/analytics/performance/V1?window=24h"), (0, "/v1/vehicles?limit=10&cursor=V1"),
    (0, "/v1/vehicles/V1"), (0, "/v1/vehicles/V%C3%A9hicule-7/history?step=15m"),
    (0, "/v1/meters/M1"), (0, "/v1/fleet/summary"), (0, "/healthz"), (0, "/readyz"),
    (0, "/metrics"), (0, "/openapi.json"), (0, "/docs/"), (0, "/docs/swagger-ui.css"),
    (1, "/v1/ingest/meter"), (1, "/v1/ingest/vehicle"), (2, "/v1/vehicles/V1/assignment"),
    (8, "//v1//vehicles/%2F%00/"), (0, "/v1/vehicles/a/b/c/d/e/f/g/h/i"), (3, "/v1/vehicles/V1"),
    (8, "/v1/analytics/performance/%zz%"), (0, "/v1/vehicles/+x+?q=%"),
]


def main():
    write("fuzz_codec", codec_seeds())
    write("fuzz_json_reading", JSON)
    write("fuzz_csv_row", CSV)
    write("fuzz_timefmt", [t.encode("latin-1") if isinstance(t, str) else t for t in TIMES])
    write("fuzz_params", [p.encode("latin-1") for p in PARAMS])
    write("fuzz_cursor", [c.encode("latin-1") for c in CURSORS])
    write("fuzz_router", [bytes([m]) + u.encode() for m, u in URLS])


if __name__ == "__main__":
    main()
