#!/usr/bin/env python3
"""Clients and checks for scripts/test-http-faults.sh (loopback only, standard library only).

  http-faults.py check-store STORE
      every blobs/sha256-<hex> file hashes to <hex>; every manifest parses and each blob it
      names is present with the recorded size. Prints JSON (visible blobs, partial files and
      their bytes, manifests, problems); exit status 1 when there is a problem.
  http-faults.py create URL --model M --file F [--quantize Q]
      what `hearth create` does: HEAD /api/blobs/<d>, POST it when missing (the file streamed),
      then a streaming POST /api/create {model, files, quantize}. One line per phase on
      stdout (`phase upload`, `phase <status>`); exit 0 on "success".
  http-faults.py pull URL --model M [--hang-up-at BYTES]
      a streaming POST /api/pull with insecure: true. Prints JSON: the status, the offset each
      blob started at (> 0: resumed), the error line if any. With --hang-up-at the client closes
      the connection once a blob's progress passes BYTES (exit 0 when it did).
  http-faults.py upload URL --file F [--rate BYTES_PER_S] [--hang-up-at BYTES]
      POST /api/blobs/sha256:<d> with the file as body (Content-Length), optionally throttled,
      optionally closing the connection after BYTES. Prints JSON {status, sent}.
  http-faults.py head URL DIGEST
      prints the status of HEAD /api/blobs/DIGEST.
  http-faults.py proxy TARGET_PORT --rate BYTES_PER_S --port-file F
      a TCP proxy on a free loopback port (written to F) whose server-to-client direction is
      limited to BYTES_PER_S over all connections together (to slow a pull down enough to be
      interrupted). Runs until killed.
"""
import argparse
import asyncio
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import time
from urllib.parse import urlparse

BLOB_RE = re.compile(r"sha256-([0-9a-f]{64})")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def host_port(url):
    u = urlparse(url)
    return u.hostname, u.port or 80


# ---- check-store

def check_store(args):
    root = args.store
    blobs_dir = os.path.join(root, "blobs")
    man_dir = os.path.join(root, "manifests")
    out = {"visible_blobs": 0, "partials": [], "partial_bytes": 0, "manifests": 0, "manifest_temps": 0,
           "problems": []}
    sizes = {}
    if os.path.isdir(blobs_dir):
        for name in sorted(os.listdir(blobs_dir)):
            path = os.path.join(blobs_dir, name)
            if not os.path.isfile(path):
                continue
            m = BLOB_RE.fullmatch(name)
            if m:
                out["visible_blobs"] += 1
                sizes[m.group(1)] = os.path.getsize(path)
                got = sha256_file(path)
                if got != m.group(1):
                    out["problems"].append(f"visible blob {name} ({sizes[m.group(1)]} bytes) hashes to {got}")
            elif name.startswith("sha256-") and "-partial" in name:
                out["partials"].append(name[:7 + 12] + "…" + name[7 + 64:])
                out["partial_bytes"] += os.path.getsize(path)
            else:
                out["problems"].append(f"unexpected file in blobs/: {name}")
    for dirpath, _, files in os.walk(man_dir):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, man_dir)
            if name.startswith("."):  # a manifest temp file (.<tag>.tmp-<random>): not a model
                out["manifest_temps"] += 1
                continue
            out["manifests"] += 1
            try:
                with open(path, "rb") as f:
                    m = json.loads(f.read())
                layers = [m["config"]] + list(m["layers"])
            except Exception as e:  # noqa: BLE001
                out["problems"].append(f"manifest {rel} does not parse: {e}")
                continue
            for layer in layers:
                d = str(layer.get("digest", ""))
                hexd = d[7:] if d.startswith("sha256:") else ""
                if hexd not in sizes:
                    out["problems"].append(f"manifest {rel} names the missing blob {d}")
                elif sizes[hexd] != layer.get("size"):
                    out["problems"].append(f"manifest {rel}: blob {d} has {sizes[hexd]} bytes, "
                                           f"the manifest says {layer.get('size')}")
    json.dump(out, sys.stdout)
    print()
    return 1 if out["problems"] else 0


# ---- create

def ndjson_lines(resp):
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


def phase(text):
    print("phase", text, flush=True)


def create(args):
    host, port = host_port(args.url)
    digest = "sha256:" + sha256_file(args.file)
    conn = http.client.HTTPConnection(host, port, timeout=600, blocksize=1 << 20)
    conn.request("HEAD", "/api/blobs/" + digest)
    r = conn.getresponse()
    r.read()
    if r.status == 404:
        phase("upload")
        size = os.path.getsize(args.file)
        with open(args.file, "rb") as f:
            conn.request("POST", "/api/blobs/" + digest, body=f,
                         headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            body = r.read()
        if r.status not in (200, 201):
            print("upload failed:", r.status, body[:300].decode(errors="replace"), flush=True)
            return 1
    elif r.status != 200:
        print("HEAD /api/blobs failed:", r.status, flush=True)
        return 1
    req = {"model": args.model, "files": {os.path.basename(args.file): digest}, "stream": True}
    if args.quantize:
        req["quantize"] = args.quantize
    conn.request("POST", "/api/create", body=json.dumps(req), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        print("create failed:", r.status, r.read()[:300].decode(errors="replace"), flush=True)
        return 1
    last = None
    for obj in ndjson_lines(r):
        if "error" in obj:
            print("create error:", obj["error"], flush=True)
            return 1
        st = obj.get("status", "")
        key = st.split(" sha256:")[0]
        if key != last:
            phase(key)
            last = key
    return 0 if last == "success" else 1


# ---- pull

def pull(args):
    host, port = host_port(args.url)
    conn = http.client.HTTPConnection(host, port, timeout=600)
    conn.request("POST", "/api/pull", body=json.dumps({"model": args.model, "insecure": True}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    out = {"http": r.status, "started_at": {}, "total": {}, "last": None, "error": None, "hung_up": False}
    if r.status != 200:
        out["error"] = r.read()[:300].decode(errors="replace")
        json.dump(out, sys.stdout)
        print()
        return 1
    for obj in ndjson_lines(r):
        if "error" in obj:
            out["error"] = obj["error"]
            break
        out["last"] = obj.get("status")
        d = obj.get("digest")
        if d:
            out["started_at"].setdefault(d, obj.get("completed", 0))
            out["total"][d] = obj.get("total", 0)
            if args.hang_up_at is not None and obj.get("completed", 0) >= args.hang_up_at \
                    and obj.get("completed", 0) < obj.get("total", 0):
                out["hung_up"] = True
                out["hung_up_at"] = obj.get("completed")
                conn.sock.shutdown(socket.SHUT_RDWR)
                conn.close()
                break
    json.dump(out, sys.stdout)
    print()
    if out["hung_up"]:
        return 0
    return 0 if out["last"] == "success" and not out["error"] else 1


# ---- upload

def upload(args):
    host, port = host_port(args.url)
    digest = "sha256:" + sha256_file(args.file)
    size = os.path.getsize(args.file)
    s = socket.create_connection((host, port), timeout=60)
    s.sendall((f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n").encode())
    sent = 0
    chunk = 256 << 10
    t0 = time.monotonic()
    out = {"digest": digest, "size": size, "status": None, "sent": 0}
    try:
        with open(args.file, "rb") as f:
            while True:
                if args.hang_up_at is not None and sent >= args.hang_up_at:
                    out["hung_up"] = True
                    s.close()
                    out["sent"] = sent
                    json.dump(out, sys.stdout)
                    print()
                    return 0
                b = f.read(chunk)
                if not b:
                    break
                s.sendall(b)
                sent += len(b)
                if args.rate:
                    ahead = sent / args.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        raw = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
        out["status"] = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    except OSError as e:
        out["error"] = type(e).__name__
    out["sent"] = sent
    json.dump(out, sys.stdout)
    print()
    return 0 if out["status"] in (200, 201) else 1


def head(args):
    host, port = host_port(args.url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("HEAD", "/api/blobs/" + args.digest)
    print(conn.getresponse().status)
    return 0


# ---- proxy

class Bucket:
    """One token bucket shared by every connection's server-to-client direction."""

    def __init__(self, rate):
        self.rate = rate
        self.t = time.monotonic()
        self.debt = 0.0

    async def take(self, n):
        now = time.monotonic()
        self.debt = max(0.0, self.debt - (now - self.t) * self.rate) + n
        self.t = now
        wait = self.debt / self.rate
        if wait > 0.005:
            await asyncio.sleep(wait)


async def pump(reader, writer, bucket):
    try:
        while True:
            b = await reader.read(64 << 10)
            if not b:
                break
            if bucket:
                await bucket.take(len(b))
            writer.write(b)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def proxy_main(args):
    bucket = Bucket(args.rate)

    async def serve(cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", args.target_port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, uw, None), pump(ur, cw, bucket))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def proxy(args):
    asyncio.run(proxy_main(args))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check-store")
    c.add_argument("store")
    c = sub.add_parser("create")
    c.add_argument("url")
    c.add_argument("--model", required=True)
    c.add_argument("--file", required=True)
    c.add_argument("--quantize")
    c = sub.add_parser("pull")
    c.add_argument("url")
    c.add_argument("--model", required=True)
    c.add_argument("--hang-up-at", type=int)
    c = sub.add_parser("upload")
    c.add_argument("url")
    c.add_argument("--file", required=True)
    c.add_argument("--rate", type=float)
    c.add_argument("--hang-up-at", type=int)
    c = sub.add_parser("head")
    c.add_argument("url")
    c.add_argument("digest")
    c = sub.add_parser("proxy")
    c.add_argument("target_port", type=int)
    c.add_argument("--rate", type=float, required=True)
    c.add_argument("--port-file", required=True)
    args = p.parse_args()
    fn = {"check-store": check_store, "create": create, "pull": pull, "upload": upload, "head": head,
          "proxy": proxy}[args.cmd]
    try:
        sys.exit(fn(args))
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        print(json.dumps({"client_error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
