#!/usr/bin/env python3
"""The probe of bench/freshness.sh: single readings at random moments, each
timed from its acknowledgement to the moment the API shows it.

    freshness_probe.py BASE_URL PREFIX PROBES MEAN_GAP_S SEED PRIME

BASE_URL is the API; the readings belong to vehicles PREFIX1..PREFIX{VEHICLES},
primed (one reading each, before timing starts) when PRIME is 1, so each probe
updates a vehicle the service already knows, as a fleet's readings do.

A reading counts as produced when POST /v1/ingest/vehicle answers 202, which
the API sends only once Kafka acknowledged the record (acks=all). Two threads
then poll, each on its own keep-alive connection: the state route
GET /v1/vehicles/{id} until lastReadingAt is the reading's time, and the
performance report GET /v1/analytics/performance/{id} until its
latestSnapshot.lastReadingAt is the reading's time and metrics.vehicleReadings
counts it (the history holds it, not only the hot state; the count before
is read first, untimed). The gaps between
probes are exponential (random moments, a Poisson process) with the mean
given, so probes land anywhere in the consumers' batch cycle. A probe not
shown within GIVE_UP_S is lost; after MAX_LOST the run ends early (consumers
that fall behind their load would make every later probe wait as long).

Prints one line per probe ("probe N at TIME VEHICLE state_ms= report_ms=") and
ends with
    freshness_raw: n= state_p50_ms= state_p99_ms= state_max_ms= report_p50_ms= report_p99_ms= report_max_ms= lost=
Only the standard library: it runs with the system's python3.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

VEHICLES = 20
GIVE_UP_S = 30.0
MAX_LOST = 3
# The state route answers from memory; the report of an unassigned probe vehicle
# asks PostgreSQL, so it is polled less often (its target is 1 s, not 50 ms).
STATE_POLL_GAP_S = 0.001
# The write key the bench made (bench/freshness.sh), from the environment.
WRITE_KEY = os.environ.get("EIE_FRESHNESS_WRITE_KEY", "")
REPORT_POLL_GAP_S = 0.01


class Api:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in (0, 1):  # a keep-alive connection the server closed: once more
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                if body is not None and WRITE_KEY:  # writes need a key (README, API keys)
                    headers["Authorization"] = "Bearer " + WRITE_KEY
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def parse_ms(text):
    """RFC 3339 as the API writes it (UTC, optional milliseconds)."""
    if text is None:
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    secs = time.mktime(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return int(secs) * 1000 + (int(frac.ljust(3, "0")[:3]) if frac else 0)


def produce(api, vehicle, ts_ms, rng):
    body = json.dumps({"vehicleId": vehicle, "soc": round(rng.uniform(10, 90), 2),
                       "kwhDeliveredDc": 0.1, "batteryTemp": 30.0, "timestamp": iso(ts_ms)})
    status, text = api.request("POST", "/v1/ingest/vehicle", body)
    if status != 202:
        sys.exit("freshness_probe: ingest answered %d: %s" % (status, text[:300]))
    return time.monotonic()


def state_shows(api, vehicle, ts_ms, _count):
    status, text = api.request("GET", "/v1/vehicles/" + vehicle)
    return status == 200 and parse_ms(json.loads(text).get("lastReadingAt")) == ts_ms


def report(api, vehicle):
    status, text = api.request("GET", "/v1/analytics/performance/%s?window=24h" % vehicle)
    return json.loads(text) if status == 200 else None


def report_count(api, vehicle):
    doc = report(api, vehicle)
    return doc["metrics"]["vehicleReadings"] if doc else 0


def report_shows(api, vehicle, ts_ms, count):
    doc = report(api, vehicle)
    return (doc is not None and parse_ms(doc["latestSnapshot"].get("lastReadingAt")) == ts_ms
            and doc["metrics"]["vehicleReadings"] >= count)


def wait_until(shows, gap_s, api, vehicle, ts_ms, count, out, key):
    """Polls until shows(...) holds; out[key] is the moment (monotonic), or None."""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        if shows(api, vehicle, ts_ms, count):
            out[key] = time.monotonic()
            return
        time.sleep(gap_s)
    out[key] = None


def percentile(values, p):
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def main():
    base, prefix, probes, mean_gap, seed, prime = sys.argv[1:7]
    probes, mean_gap, rng = int(probes), float(mean_gap), random.Random(int(seed))
    producer, state_api, report_api = Api(base), Api(base), Api(base)
    vehicles = ["%s%d" % (prefix, i) for i in range(1, VEHICLES + 1)]
    last_ts = {}

    def one(vehicle):
        # Each reading newer than the vehicle's last, else the state keeps the old one.
        ts_ms = max(int(time.time() * 1000), last_ts.get(vehicle, 0) + 1)
        last_ts[vehicle] = ts_ms
        count = report_count(report_api, vehicle) + 1
        acked = produce(producer, vehicle, ts_ms, rng)
        seen = {}
        threads = [threading.Thread(target=wait_until, args=(f, g, a, vehicle, ts_ms, count, seen, k))
                   for f, g, a, k in ((state_shows, STATE_POLL_GAP_S, state_api, "state"),
                                      (report_shows, REPORT_POLL_GAP_S, report_api, "report"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [None if seen[k] is None else (seen[k] - acked) * 1000 for k in ("state", "report")]

    for vehicle in vehicles if prime == "1" else ():  # known to the service before timing
        if None in one(vehicle):
            sys.exit("freshness_probe: the priming reading of %s never showed" % vehicle)
    state, reports, lost, n = [], [], 0, 0
    vehicle_of_last = [None]
    while n < probes and lost < MAX_LOST:
        n += 1
        time.sleep(rng.expovariate(1.0 / mean_gap))
        vehicle_of_last[0] = rng.choice(vehicles)
        s, r = one(vehicle_of_last[0])
        print("probe %d at %s %s state_ms=%s report_ms=%s" % (
            n, iso(int(time.time() * 1000)), vehicle_of_last[0], "lost" if s is None else "%.1f" % s,
            "lost" if r is None else "%.1f" % r), flush=True)
        lost += s is None or r is None
        if s is not None:
            state.append(s)
        if r is not None:
            reports.append(r)
    print("freshness_raw: n=%d state_p50_ms=%.1f state_p99_ms=%.1f state_max_ms=%.1f "
          "report_p50_ms=%.1f report_p99_ms=%.1f report_max_ms=%.1f lost=%d" % (
              n, percentile(state, 50), percentile(state, 99), max(state, default=float("nan")),
              percentile(reports, 50), percentile(reports, 99), max(reports, default=float("nan")), lost))


if __name__ == "__main__":
    main()
