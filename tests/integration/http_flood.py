"""Connection flood against eie-api, for test_api_flood.sh.

Times requests from one address (new connection each, 'Connection: close')
before and during a flood from another: connections that trickle a request
head one byte at a time, and connections that send nothing. Then waits for
the server to shed the flood, and prints one JSON object with the figures.
Bounded: every wait has a timeout, and the whole run stops by itself.
"""
import argparse
import asyncio
import json
import time


async def timed_request(host, port, client, path, timeout):
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(client, 0)), timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(-1), timeout)
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        status = 0
    return status, (time.monotonic() - t0) * 1000


async def measure(args):
    results = []
    for i in range(args.requests):
        results.append(await timed_request(args.host, args.port, args.client,
                                           args.paths[i % len(args.paths)], args.request_timeout))
    times = sorted(ms for _, ms in results)
    return {"served": sum(1 for s, _ in results if s == 200), "requests": len(results),
            "p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99) - 1],
            "max_ms": times[-1]}


async def flood_connection(args, trickle, opened, closed):
    """Holds one connection until the server closes it; records when."""
    try:
        reader, writer = await asyncio.open_connection(args.host, args.port,
                                                       local_addr=(args.flooder, 0))
    except OSError:
        closed.append(0.0)  # refused outright: shed at once
        return
    t0 = time.monotonic()
    opened.append(t0)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
    try:
        for i in range(len(head) if trickle else 1):
            if trickle:
                writer.write(head[i:i + 1])
                await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(4096),
                                              args.trickle_interval if trickle else args.hold)
                if not data:
                    break  # closed by the server
            except asyncio.TimeoutError:
                if not trickle:
                    raise
    except (OSError, asyncio.TimeoutError):
        pass
    if time.monotonic() - t0 < args.hold:
        closed.append(time.monotonic() - t0)
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client", default="127.0.0.2", help="address of the timed requests")
    p.add_argument("--flooder", default="127.0.0.1", help="address of the flood")
    p.add_argument("--paths", default="/healthz,/v1/vehicles?limit=10")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--trickling", type=int, default=1000)
    p.add_argument("--silent", type=int, default=1000)
    p.add_argument("--trickle-interval", type=float, default=0.5, help="seconds between bytes")
    p.add_argument("--hold", type=float, default=30, help="longest a flood connection is held")
    p.add_argument("--request-timeout", type=float, default=5)
    args = p.parse_args()
    args.paths = args.paths.split(",")

    baseline = await measure(args)
    opened, closed = [], []
    flood = [asyncio.create_task(flood_connection(args, i < args.trickling, opened, closed))
             for i in range(args.trickling + args.silent)]
    await asyncio.sleep(1)  # the flood in place
    during = await measure(args)
    done, pending = await asyncio.wait(flood, timeout=args.hold + 5)
    for task in pending:
        task.cancel()
    print(json.dumps({"baseline": baseline, "during": during,
                      "flood": {"connections": len(flood), "accepted": len(opened),
                                "closed_by_server": len(closed),
                                "last_closed_s": max(closed) if closed else None}}))


asyncio.run(main())
