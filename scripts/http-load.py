#!/usr/bin/env python3
"""Load and fault generator for the daemon's HTTP layer (loopback only, standard library only).

  http-load.py hold  URL --loris N --idle N [--probes N] [--model M]
      opens N slow-loris sockets (half a request line, never finished) and N idle keep-alive
      sockets (one request answered, socket kept open), then times GET /api/version from new
      clients and runs one /api/generate; prints JSON with p50/p99 latencies.
  http-load.py storm URL --model M --n N [--disconnect F] [--num-predict K]
      N concurrent streaming /api/generate requests; a fraction F of the clients hang up
      after their first streamed line. Prints JSON: completed, disconnected, failed, time.
  http-load.py metrics URL
      prints the daemon's /metrics values this tool reads, as JSON.

Why a script: no Debian package offers a load tool that hangs up mid-stream or holds
half-sent requests on purpose; asyncio holds thousands of sockets in one thread.
"""
import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlparse


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def host_port(url):
    u = urlparse(url)
    return u.hostname, u.port or 80


async def request(host, port, method, path, body=None, timeout=30.0):
    """One request on a new connection; returns (status, body bytes)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
        status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
        return status, raw.partition(b"\r\n\r\n")[2]
    finally:
        writer.close()


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else None


async def hold(args):
    host, port = host_port(args.url)
    socks = []
    for _ in range(args.loris):
        r, w = await asyncio.open_connection(host, port)
        w.write(b"GET /api/vers")  # never finished
        socks.append(w)
    idle_ok = 0
    for _ in range(args.idle):
        r, w = await asyncio.open_connection(host, port)
        w.write(f"GET /api/version HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await w.drain()
        line = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
        if line.startswith(b"HTTP/1.1 200"):
            idle_ok += 1
        socks.append(w)
    await asyncio.sleep(0.2)
    lat = []
    failed = 0
    for _ in range(args.probes):
        t0 = time.perf_counter()
        try:
            status, _ = await request(host, port, "GET", "/api/version", timeout=10)
        except Exception:
            status = 0
        lat.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            failed += 1
    gen = None
    if args.model:
        t0 = time.perf_counter()
        status, body = await request(host, port, "POST", "/api/generate",
                                     {"model": args.model, "prompt": "Once upon a time", "stream": False,
                                      "options": {"num_predict": 8, "temperature": 0}}, timeout=60)
        gen = {"status": status, "ms": round((time.perf_counter() - t0) * 1000, 1),
               "done": status == 200 and json.loads(body).get("done") is True}
    for w in socks:
        w.close()
    return {"loris": args.loris, "idle": args.idle, "idle_answered": idle_ok, "probes": args.probes,
            "probe_failed": failed, "version_p50_ms": round(percentile(lat, 50), 2),
            "version_p99_ms": round(percentile(lat, 99), 2), "generate": gen}


async def one_stream(host, port, model, num_predict, hang_up, sem, stats):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 60)
        except Exception:
            stats["failed"] += 1
            stats["errors"]["connect"] = stats["errors"].get("connect", 0) + 1
            return
        try:
            body = json.dumps({"model": model, "prompt": "Once upon a time", "stream": True,
                               "options": {"num_predict": num_predict, "temperature": 0.8}}).encode()
            writer.write(f"POST /api/generate HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 600)
            if not head.startswith(b"HTTP/1.1 200"):
                stats["failed"] += 1
                key = head.split(b"\r\n", 1)[0].decode(errors="replace")
                stats["errors"][key] = stats["errors"].get(key, 0) + 1
                return
            if hang_up:
                await asyncio.wait_for(reader.readuntil(b"\n"), 600)  # the first streamed line (chunk size)
                stats["disconnected"] += 1
                return
            rest = await asyncio.wait_for(reader.read(-1), 600)
            if b'"done":true' in rest:
                stats["completed"] += 1
            else:
                stats["failed"] += 1
                stats["errors"]["no done line"] = stats["errors"].get("no done line", 0) + 1
        except Exception as e:
            stats["failed"] += 1
            stats["errors"][type(e).__name__] = stats["errors"].get(type(e).__name__, 0) + 1
        finally:
            writer.close()


async def storm(args):
    host, port = host_port(args.url)
    stats = {"completed": 0, "disconnected": 0, "failed": 0, "errors": {}}
    sem = asyncio.Semaphore(args.n)
    every = int(round(1 / args.disconnect)) if args.disconnect > 0 else 0
    t0 = time.perf_counter()
    await asyncio.gather(*[one_stream(host, port, args.model, args.num_predict, every > 0 and i % every == 0, sem, stats)
                           for i in range(args.n)])
    stats["requests"] = args.n
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    return stats


async def metrics(args):
    host, port = host_port(args.url)
    status, body = await request(host, port, "GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base in ("process_resident_memory_bytes", "process_threads", "hearth_manager_requests_cancelled_total",
                    "hearth_manager_requests_completed_total", "hearth_http_connections_open",
                    "hearth_http_timeouts_total", "hearth_http_handler_threads"):
            out[base] = float(value)
        elif base == "hearth_requests_running":
            out[base] = out.get(base, 0.0) + float(value)
    return out


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("url")
    h.add_argument("--loris", type=int, default=1000)
    h.add_argument("--idle", type=int, default=1000)
    h.add_argument("--probes", type=int, default=200)
    h.add_argument("--model")
    s = sub.add_parser("storm")
    s.add_argument("url")
    s.add_argument("--model", required=True)
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--disconnect", type=float, default=0.2)
    s.add_argument("--num-predict", type=int, default=16)
    m = sub.add_parser("metrics")
    m.add_argument("url")
    args = p.parse_args()
    raise_fd_limit()
    result = asyncio.run({"hold": hold, "storm": storm, "metrics": metrics}[args.cmd](args))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
