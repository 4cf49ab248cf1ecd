#!/usr/bin/env python3
"""Fault scenarios against a running test bed of scripts/cluster-testbed.sh (python3 standard
library only). Each scenario is bounded in time, prints what it measured and one line
`PASS name: ...`, `FAIL name: ...` or `SKIP name: ...`; the exit status is 1 when one failed.

  cluster-faults.py --dir TB_DIR [--itt SECONDS] [--model NAME] [SCENARIO ...]

Scenarios (default: all, in this order):
  join       a new worker (`add-worker`) gets traffic from the router within 2 s of its
             registration (without a router: it registers within 2 s of answering HTTP)
  drain      `hearth drain` of a worker under streaming load (a worker of its own, d<N>, slowed
             by HEARTH_DEBUG_TOKEN_DELAY so that its streams last ~2 s): no request lost, no
             new request to it once draining, its record goes away, it exits 0
  term       the same with SIGTERM
  stop       SIGSTOP of a worker for 8 s under load: the router sends it no new request later
             than 6 s after the stop; every request sent meanwhile is answered completely
             within 20 s; a stream already on it ends with an error event within the
             inter-token timeout (--itt) + 1.5 s; after SIGCONT it is back in rotation
             (without a router: its lease expires, and it registers again after SIGCONT)
  kill9      SIGKILL under load: its record is gone within the lease TTL (+1 s), the router
             sends it nothing after that, no request fails
  partition  (bed with --netns) an nftables drop rule in its namespace for 10 s: as `stop`
  linkdown   (bed with --netns) its veth link down for 10 s: as `stop`, without the stream
  etcd       etcd stopped for --etcd-down seconds (default 30) under load, a worker killed and
             a new one started meanwhile: the router keeps serving and says so in /metrics
             (hearth_router_etcd_up 0); after etcd returns, etcd's records, the router's
             workers and the live processes agree within the lease TTL + 10 s, the new worker
             gets traffic, and so does one started after the return (no router restart)

Requests are /api/generate with distinct prompts (so that no prefix affinity pins them),
num_predict 8..16 and temperature 0 (streams: up to 480 tokens of stories260K, which last long
enough to be caught mid-flight). Every response of the router names its worker in the header
X-Hearth-Node.
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

LEASE_TTL = 5.0
DRAIN_TOKEN_DELAY_MS = 20  # the drained worker's HEARTH_DEBUG_TOKEN_DELAY: 96 tokens take ~2 s
NODE_HEADER = "X-Hearth-Node"
WORDS = ("apple bird cat dog egg fish girl hat ice jam kite lion moon nest owl pig queen rain sun tree "
         "umbrella van wind box yard zoo ball cake duck frog goat horse milk park ring ship star toy").split()


def now():
    return time.monotonic()


def log(*a):
    print(*a, flush=True)


# ---- the test bed (its state directory; faults through the testbed CLI)

class Bed:
    def __init__(self, tb_dir, testbed):
        self.dir = tb_dir
        self.testbed = testbed
        self.state = {}
        with open(os.path.join(tb_dir, "state")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    self.state[k] = v
        self.cluster = self.state.get("CLUSTER", "testbed")
        self.etcd_url = "http://127.0.0.1:" + self.state["ETCD_PORT"]
        self.netns = self.state.get("NETNS") == "1"
        self.hearth = self.state.get("HEARTH")

    def _read(self, *parts):
        try:
            with open(os.path.join(self.dir, *parts)) as f:
                return f.read().strip()
        except OSError:
            return ""

    def router_url(self):
        pid = self._read("router.pid")
        with open(os.path.join(self.dir, "state")) as f:
            for line in f:
                if line.startswith("ROUTER_URL="):
                    url = line.strip().split("=", 1)[1]
                    return url if pid and pid_alive(int(pid)) else None
        return None

    def workers(self):
        d = os.path.join(self.dir, "workers")
        return sorted(os.listdir(d), key=lambda s: (len(s), s)) if os.path.isdir(d) else []

    def url(self, wid):
        return self._read("workers", wid, "url")

    def pid(self, wid):
        p = self._read("workers", wid, "pid")
        return int(p) if p else None

    def rc(self, wid):
        r = self._read("workers", wid, "rc")
        return int(r) if r else None

    def alive(self, wid):
        p = self.pid(wid)
        return p is not None and pid_alive(p) and self.rc(wid) is None

    def live(self):
        return [w for w in self.workers() if self.alive(w)]

    def ctl(self, *args, timeout=60, env=None):
        r = subprocess.run([self.testbed, "--dir", self.dir, *args], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            raise RuntimeError(f"cluster-testbed.sh {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
        return r.stdout.strip()

    def nodes(self):
        """{node id: record} from etcd; None when etcd does not answer."""
        prefix = f"/hearth/v1/{self.cluster}/nodes/"
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = json.dumps({"key": b64(prefix), "range_end": b64(end)})
        try:
            st, _, data = http_call(self.etcd_url, "POST", "/v3/kv/range", body, timeout=1.0)
        except OSError:
            return None
        if st != 200:
            return None
        out = {}
        for kv in json.loads(data).get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            try:
                rec = json.loads(base64.b64decode(kv.get("value", "")))
            except ValueError:
                rec = {}
            out[key[len(prefix):]] = rec
        return out

    def log_tail(self, wid, n=15):
        p = os.path.join(self.dir, "workers", wid, "log") if wid != "router" else os.path.join(self.dir, "router.log")
        try:
            with open(p, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def b64(s):
    return base64.b64encode(s.encode()).decode()


def http_call(base, method, path, body=None, timeout=5.0, headers=None):
    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


# ---- requests

_counter = [0]
_counter_mu = threading.Lock()


def fresh_prompt():
    with _counter_mu:
        _counter[0] += 1
        n = _counter[0]
    w = random.sample(WORDS, 3)
    return f"{w[0]} {n} {w[1]} {w[2]}. Once upon a time"


class Result:
    __slots__ = ("t_send", "t_first", "t_end", "status", "node", "ok", "err", "tokens", "error_event", "eof")

    def __init__(self):
        self.t_send = now()
        self.t_first = self.t_end = None
        self.status = None
        self.node = None
        self.ok = False
        self.err = None
        self.tokens = 0
        self.error_event = None
        self.eof = False

    def latency(self):
        return (self.t_end or now()) - self.t_send


def generate(base, model, num_predict=8, stream=False, timeout=30.0, prompt=None, on_headers=None, on_line=None):
    """One POST /api/generate; never raises. on_headers(result, conn) -> False closes early
    (result.err = 'closed'); on_line(result, obj) is called for each streamed line."""
    res = Result()
    u = urlparse(base)
    body = json.dumps({"model": model, "prompt": prompt or fresh_prompt(), "stream": stream,
                       "options": {"num_predict": num_predict, "temperature": 0}})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("POST", "/api/generate", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        res.status = r.status
        res.node = r.getheader(NODE_HEADER)
        if on_headers is not None and on_headers(res, conn) is False:
            res.err = "closed"
            return res
        if r.status != 200:
            res.t_first = now()
            res.err = f"HTTP {r.status}: {r.read()[:200].decode(errors='replace')}"
            return res
        if not stream:
            data = r.read()
            res.t_first = now()
            obj = json.loads(data)
            res.tokens = obj.get("eval_count", 0)
            res.ok = bool(obj.get("done")) and "error" not in obj
            if not res.ok:
                res.err = f"incomplete answer: {data[:200]!r}"
            return res
        buf = b""
        done = False
        while True:
            chunk = r.read1(65536)
            if not chunk:
                res.eof = True
                break
            if res.t_first is None:
                res.t_first = now()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                obj = json.loads(line)
                if "error" in obj:
                    res.error_event = obj["error"]
                    res.t_end = now()
                    res.err = "error event: " + str(obj["error"])[:200]
                    return res
                if obj.get("response"):
                    res.tokens += 1
                if on_line is not None:
                    on_line(res, obj)
                if obj.get("done"):
                    done = True
            if done:
                break
        res.ok = done
        if not done:
            res.err = "the stream ended without done" + (f" (after {res.tokens} tokens)" if res.tokens else "")
        return res
    except Exception as e:  # noqa: BLE001 - a failed request is data here
        res.err = f"{type(e).__name__}: {e}"
        return res
    finally:
        if res.t_end is None:
            res.t_end = now()
        conn.close()


class Load:
    """`concurrency` client threads sending requests back to back until stop()."""

    def __init__(self, base, model, concurrency=3, num_predict=8, stream=False, timeout=30.0, pause=0.0):
        self.base, self.model = base, model
        self.concurrency, self.num_predict, self.stream, self.timeout, self.pause = \
            concurrency, num_predict, stream, timeout, pause
        self.results = []
        self.mu = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def start(self):
        for _ in range(self.concurrency):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self):
        while not self.stopping.is_set():
            r = generate(self.base, self.model, self.num_predict, self.stream, self.timeout)
            with self.mu:
                self.results.append(r)
            if not r.ok:
                time.sleep(0.05)  # a failing target: do not spin
            elif self.pause:
                time.sleep(self.pause)

    def snapshot(self):
        with self.mu:
            return list(self.results)

    def stop(self, wait=35.0):
        self.stopping.set()
        deadline = now() + wait
        for t in self.threads:
            t.join(max(0.0, deadline - now()))
        return self.snapshot()

    def first_from(self, node, after):
        """The earliest send time (>= after) of a request answered by `node`."""
        ts = [r.t_send for r in self.snapshot() if r.node == node and r.ok and r.t_send >= after]
        return min(ts) if ts else None


def describe_failures(results, limit=5):
    bad = [r for r in results if not r.ok]
    return "; ".join(f"{r.err} (node {r.node}, {r.latency():.1f} s)" for r in bad[:limit])


# ---- Prometheus text, the router's per-worker counters

LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            continue
        labels = dict(LABEL_RE.findall(m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            pass
    return out


def get_metrics(base, timeout=2.0):
    try:
        st, _, data = http_call(base, "GET", "/metrics", timeout=timeout)
        return parse_metrics(data.decode(errors="replace")) if st == 200 else None
    except OSError:
        return None


def worker_dispatches(samples, node):
    """What the router counts as requests sent to `node`: the sum of its hearth_router_*
    request counters (requests and retries landing there, not errors) whose labels name it."""
    total = None
    for name, labels, v in samples:
        if not name.startswith("hearth_router_") or not name.endswith("_total"):
            continue
        if "request" not in name or "error" in name or "fail" in name:
            continue
        if node not in labels.values():
            continue
        total = (total or 0.0) + v
    return total


def metric_value(samples, name, **want):
    for n, labels, v in samples or []:
        if n == name and all(labels.get(k) == x for k, x in want.items()):
            return v
    return None


class MetricsPoller:
    """Polls the router's /metrics every 0.2 s; records (t, dispatches to node, etcd_up)."""

    def __init__(self, base, node=None):
        self.base, self.node = base, node
        self.history = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stopping.is_set():
            t = now()
            s = get_metrics(self.base, timeout=1.0)
            if s is not None:
                self.history.append((t, worker_dispatches(s, self.node) if self.node else None,
                                     metric_value(s, "hearth_router_etcd_up")))
            self.stopping.wait(0.2)

    def stop(self):
        self.stopping.set()
        self.thread.join(3)
        return self.history

    def last_dispatch_after(self, t0, t1):
        """The time of the last rise of the node's dispatch counter seen in (t0, t1], as
        the poll that first saw it (None: no rise; 'unknown': no such counter)."""
        h = [(t, c) for t, c, _ in self.history if c is not None]
        if not h:
            return "unknown"
        last = None
        prev = None
        for t, c in h:
            if prev is not None and c > prev and t0 < t <= t1:
                last = t
            prev = c
        return last


# ---- scenarios

class Skip(Exception):
    pass


class Scenarios:
    def __init__(self, bed, args):
        self.bed, self.args = bed, args
        self.model = args.model
        self.router = bed.router_url()
        self.results = []  # (name, verdict, text)

    # -- helpers

    def verdict(self, name, ok, text):
        v = "PASS" if ok else "FAIL"
        log(f"{v} {name}: {text}")
        self.results.append((name, v, text))

    def ensure_live(self, n):
        """At least n live, registered workers (adds workers when needed)."""
        while len(self.bed.live()) < n:
            wid = self.bed.ctl("add-worker")
            self.wait_registered(wid, 10)
            log(f"  (added worker {wid} to keep {n} in rotation)")

    def wait_registered(self, wid, secs, state=None):
        deadline = now() + secs
        while now() < deadline:
            n = self.bed.nodes() or {}
            if wid in n and (state is None or n[wid].get("state") == state):
                return now()
            time.sleep(0.05)
        return None

    def wait_gone(self, wid, secs):
        deadline = now() + secs
        while now() < deadline:
            n = self.bed.nodes()
            if n is not None and wid not in n:
                return now()
            time.sleep(0.05)
        return None

    def warm(self, wid):
        """One request straight to the worker: its model is loaded (the first request pays
        the load, not the measurement)."""
        r = generate(self.bed.url(wid), self.model, 4, timeout=30)
        if not r.ok:
            raise RuntimeError(f"worker {wid} does not answer a generate: {r.err}")

    def wait_in_rotation(self, load, wid, since, secs):
        deadline = now() + secs
        while now() < deadline:
            t = load.first_from(wid, since)
            if t is not None:
                return t
            time.sleep(0.05)
        return None

    def catch_stream(self, wid, tries=40):
        """A long stream through the router that landed on `wid`, after its first token:
        (holder, thread) where holder['res'] fills in when the stream ends."""
        pid = self.bed.pid(wid)
        first = threading.Event()
        holder = {"res": None, "t_last_token": None}

        def on_line(res, obj):
            holder["t_last_token"] = now()
            first.set()

        for _ in range(tries):
            mine = {"hit": False}

            def on_headers(res, conn, mine=mine):
                if res.node != wid:
                    return False
                mine["hit"] = True
                return True

            done = threading.Event()

            def run(mine=mine, done=done):
                r = generate(self.router, self.model, num_predict=480, stream=True, timeout=60,
                             on_headers=on_headers, on_line=on_line)
                if mine["hit"]:
                    holder["res"] = r
                done.set()

            th = threading.Thread(target=run, daemon=True)
            th.start()
            while not done.is_set() and not first.is_set():
                time.sleep(0.001)
            if first.is_set():
                return holder, th, pid
            th.join(5)
        return None, None, pid

    def judge_stream(self, holder, th, t_fault, itt, what):
        """Checks that the stream caught on the worker ended with an error event within the
        inter-token timeout (+1.5 s) of its last token."""
        th.join(itt + 20)
        r = holder["res"]
        if r is None:
            return False, "the stream did not finish"
        if r.ok:
            return None, f"the stream finished ({r.tokens} tokens) before the {what} could catch it"
        t_last = holder["t_last_token"] or t_fault
        took = r.t_end - max(t_last, t_fault)
        if r.error_event is None:
            return False, f"the stream ended without an error event after {took:.2f} s: {r.err}"
        ok = took <= itt + 1.5
        return ok, f"the stream on it ended with an error event {took:.2f} s after its last token " \
                   f"(inter-token timeout {itt:g} s): {r.error_event[:80]}"

    # -- join

    def join(self):
        self.ensure_live(2)
        # Light load (the workers are mostly idle): a new worker must get new conversations
        # at once, not only when the others are busy.
        load = Load(self.router, self.model, concurrency=2, pause=0.05).start() if self.router else None
        try:
            t0 = now()
            reg = {}

            def watch():
                deadline = now() + 15
                while now() < deadline and "t" not in reg:
                    n = self.bed.nodes() or {}
                    for k, rec in n.items():
                        if k not in known:
                            reg["t"], reg["id"], reg["rec"] = now(), k, rec
                            return
                    time.sleep(0.02)

            known = set(self.bed.nodes() or {})
            w = threading.Thread(target=watch, daemon=True)
            w.start()
            wid = self.bed.ctl("add-worker")
            t_ready = now()
            w.join(15)
            if reg.get("id") != wid:
                return self.verdict("join", False, f"{wid} answered HTTP at +{t_ready - t0:.2f} s but did not register "
                                                   f"within 15 s\n{self.bed.log_tail(wid)}")
            t_reg = reg["t"]
            rec = reg["rec"]
            log(f"  {wid}: answering HTTP at +{t_ready - t0:.2f} s, registered at +{t_reg - t0:.2f} s: "
                f"state {rec.get('state')}, url {rec.get('url')}, models {rec.get('models')}")
            problems = []
            if rec.get("url") != self.bed.url(wid):
                problems.append(f"its record's url is {rec.get('url')}, not {self.bed.url(wid)}")
            if rec.get("state") != "ready":
                problems.append(f"its record's state is {rec.get('state')}")
            if not any(str(m).split(":")[0].lower() == self.model.lower() for m in rec.get("models", [])):
                problems.append(f"its record's models {rec.get('models')} do not list {self.model}")
            st = subprocess.run([self.bed.hearth, "cluster", "status", "--cluster", self.bed.state["ETCD"],
                                 "--cluster-name", self.bed.cluster], capture_output=True, text=True, timeout=20)
            row = [ln.split() for ln in st.stdout.splitlines() if ln.split()[:1] == [wid]]
            if st.returncode != 0 or not row or self.bed.url(wid) not in row[0]:
                problems.append(f"`hearth cluster status` does not list {wid} at {self.bed.url(wid)} "
                                f"(exit {st.returncode}): {(st.stdout + st.stderr).strip()[:300]}")
            else:
                log(f"  hearth cluster status: {' '.join(row[0])}")
            if not self.router:
                ok = t_reg - t_ready <= 2.0 and not problems
                return self.verdict("join", ok, f"(no router) registered {t_reg - t_ready:.2f} s after answering HTTP "
                                                f"(limit 2 s){'; ' + '; '.join(problems) if problems else ''}")
            t_first = self.wait_in_rotation(load, wid, t0, 10)
            results = load.stop()
            load = None
            if t_first is None:
                return self.verdict("join", False, f"the router sent no request to {wid} within 10 s of its registration; "
                                                   f"{len(results)} requests went to {sorted({r.node for r in results if r.node})}")
            delay = max(0.0, t_first - t_reg)
            fails = [r for r in results if not r.ok]
            if fails:
                problems.append(f"{len(fails)} requests failed: {describe_failures(results)}")
            ok = delay <= 2.0 and not problems
            self.verdict("join", ok, f"{wid} got its first request {delay:.2f} s after registering (limit 2 s), "
                                     f"{t_first - t0:.2f} s after its start; {len(results)} requests, {len(fails)} failed"
                                     f"{'; ' + '; '.join(problems) if problems else ''}")
        finally:
            if load:
                load.stop()

    # -- drain

    def drain(self):
        self._drain("drain", use_signal=False)

    def term(self):
        self._drain("term", use_signal=True)

    def _drain(self, name, use_signal):
        """A slow worker of its own (HEARTH_DEBUG_TOKEN_DELAY: each stream on it lasts about
        2 s) drained under streaming load: `hearth drain` or SIGTERM."""
        self.ensure_live(2 if self.router else 0)
        n = 1
        while os.path.exists(os.path.join(self.bed.dir, "workers", f"d{n}")):
            n += 1
        wid = f"d{n}"
        self.bed.ctl("add-worker", wid, env={f"TB_WORKER_ENV_{wid}": f"HEARTH_DEBUG_TOKEN_DELAY={DRAIN_TOKEN_DELAY_MS}"})
        if self.wait_registered(wid, 10) is None:
            raise RuntimeError(f"{wid} did not register\n{self.bed.log_tail(wid)}")
        self.warm(wid)
        base = self.router or self.bed.url(wid)
        load = Load(base, self.model, concurrency=6, num_predict=96, stream=True).start()
        try:
            # Until streams are running on it.
            deadline = now() + 10
            while now() < deadline:
                if sum(1 for r in load.snapshot() if r.node == wid) >= 1 or not self.router:
                    break
                time.sleep(0.1)
            time.sleep(1.0)
            t0 = now()
            if use_signal:
                how = "SIGTERM"
                os.kill(self.bed.pid(wid), signal.SIGTERM)
            else:
                how = "hearth drain"
                self.bed.ctl("drain", wid, timeout=60)
            if not self.router:
                # Straight to the worker: no new requests once it drains (a draining daemon
                # still serves what it is sent, so direct clients would keep it alive until
                # HEARTH_DRAIN_TIMEOUT); those in flight run to their end.
                load.stopping.set()
            t_draining = None
            t_gone = None
            deadline = now() + 30
            while now() < deadline:
                nodes = self.bed.nodes()
                if nodes is not None:
                    if t_draining is None and nodes.get(wid, {}).get("state") == "draining":
                        t_draining = now()
                    if wid not in nodes:
                        t_gone = now()
                        break
                time.sleep(0.02)
            while self.bed.rc(wid) is None and now() < deadline:
                time.sleep(0.05)
            t_exit = now()
            rc = self.bed.rc(wid)
            time.sleep(1.5 if self.router else 0.2)
        finally:
            results = load.stop()
        inflight = [r for r in results if r.t_send < t0 and r.t_end > t0]
        on_it = [r for r in inflight if (r.node or wid) == wid]
        during = [r for r in results if r.t_send >= t0]
        if self.router:
            lost = [r for r in results if not r.ok]
            late = [r for r in during if r.node == wid and r.t_send > (t_draining or t0) + 1.0]
        else:  # straight to the draining worker: refusing new requests is its right
            lost = [r for r in inflight if not r.ok]
            late = []
        log(f"  {how} of {wid} (a token every {DRAIN_TOKEN_DELAY_MS} ms) at t0; record draining at "
            f"{'+%.2f s' % (t_draining - t0) if t_draining else 'never seen'}, gone at "
            f"{'+%.2f s' % (t_gone - t0) if t_gone else 'not within 30 s'}, exit status {rc} at +{t_exit - t0:.2f} s")
        log(f"  {len(results)} streamed requests ({'through the router' if self.router else 'straight to it'}): "
            f"{len(inflight)} in flight at the drain ({len(on_it)} on {wid}), {len(during)} sent after it, "
            f"{len([r for r in results if not r.ok])} not complete")
        problems = []
        if lost:
            problems.append(f"{len(lost)} requests lost: {describe_failures(lost)}")
        if not on_it:
            problems.append(f"no stream was on {wid} when it was drained (nothing checked)")
        if late:
            problems.append(f"{len(late)} requests sent more than 1 s after it was draining went to it")
        if rc != 0:
            problems.append(f"exit status {rc}\n{self.bed.log_tail(wid)}")
        if t_gone is None:
            problems.append("its record is still in etcd")
        elif t_draining is None:
            log("  (the record went without a `draining` state seen in between: polled every 20 ms)")
        self.verdict(name, not problems,
                     f"{how}: {wid} drained in {t_exit - t0:.2f} s with {len(on_it)} streams on it, "
                     f"{len(lost)} requests lost of {len(results)}{'; ' + '; '.join(problems) if problems else ''}")

    # -- stop / partition / linkdown: a worker unreachable for a while, then back

    def unreachable(self, name, fault, undo, hold, with_stream=True):
        itt = self.args.itt
        self.ensure_live(3 if self.router else 1)
        wid = self.bed.live()[-1]
        self.warm(wid)
        if not self.router:
            t0 = now()
            fault(wid)
            t_gone = self.wait_gone(wid, LEASE_TTL + 4)
            time.sleep(max(0.0, hold - (now() - t0)))
            t_back = now()
            undo(wid)
            t_rereg = self.wait_registered(wid, LEASE_TTL + 10, state="ready")
            ok = t_gone is not None and t_gone - t0 <= LEASE_TTL + 1.5 and t_rereg is not None
            return self.verdict(name, ok, f"(no router) {wid}'s record gone "
                                          f"{'%.2f s' % (t_gone - t0) if t_gone else 'never'} after the fault (limit "
                                          f"{LEASE_TTL + 1.5:g} s); registered again "
                                          f"{'%.2f s' % (t_rereg - t_back) if t_rereg else 'never (15 s)'} after the repair")
        load = Load(self.router, self.model, concurrency=3, num_predict=16).start()
        poller = MetricsPoller(self.router, wid).start()
        stream_verdict = (None, "no stream checked")
        try:
            time.sleep(1.0)
            holder = th = None
            if with_stream:
                holder, th, _ = self.catch_stream(wid)
                if holder is None:
                    stream_verdict = (None, f"no stream landed on {wid} in 40 tries")
            t0 = now()
            fault(wid)
            t_gone = None
            while now() - t0 < hold:
                if t_gone is None:
                    n = self.bed.nodes()
                    if n is not None and wid not in n:
                        t_gone = now()
                time.sleep(0.05)
            t_back = now()
            undo(wid)
            t_return = self.wait_in_rotation(load, wid, t_back, 20)
            time.sleep(0.5)
        finally:
            results = load.stop()
            history = poller.stop()
        if holder is not None:
            stream_verdict = self.judge_stream(holder, th, t0, itt, name)
        meanwhile = [r for r in results if t0 - 1.0 <= r.t_send <= t_back]
        bad = [r for r in meanwhile if not r.ok or r.latency() > 20.0]
        slowest = max((r.latency() for r in meanwhile), default=0.0)
        last = poller.last_dispatch_after(t0, t_back)
        problems = []
        if last == "unknown":
            # No per-worker counter in the router's /metrics: the latest answer from it.
            ts = [r.t_send for r in results if r.node == wid and t0 < r.t_send <= t_back]
            last_txt = "router /metrics has no per-worker request counter"
            if ts:
                problems.append(f"a request sent {max(ts) - t0:.2f} s after the fault was answered by {wid}")
        elif last is None:
            last_txt = "the router sent it no request after the fault"
        else:
            last_txt = f"last request routed to it {last - t0:.2f} s after the fault (limit 6 s)"
            if last - t0 > 6.0:
                problems.append(last_txt)
        log(f"  {name} {wid} for {hold:g} s: {last_txt}; record gone "
            f"{'%.2f s' % (t_gone - t0) if t_gone else 'not'} after the fault")
        log(f"  {len(meanwhile)} requests sent meanwhile, {len(bad)} not answered completely within 20 s, "
            f"slowest {slowest:.2f} s")
        log(f"  stream: {stream_verdict[1]}")
        log(f"  back in rotation {'%.2f s' % (t_return - t_back) if t_return else 'not within 20 s'} after the repair")
        if bad:
            problems.append(f"{len(bad)} requests not answered completely within 20 s: {describe_failures(bad)}")
        if stream_verdict[0] is False:
            problems.append(stream_verdict[1])
        if t_return is None:
            problems.append(f"{wid} did not return to rotation within 20 s of the repair")
        etcd_ups = [e for _, _, e in history]
        if history and all(e is None for e in etcd_ups):
            log("  (router /metrics has no hearth_router_etcd_up)")
        self.verdict(name, not problems,
                     f"{last_txt}; {len(meanwhile) - len(bad)}/{len(meanwhile)} requests complete (slowest "
                     f"{slowest:.2f} s); {stream_verdict[1] if stream_verdict[0] is not None else 'stream: ' + stream_verdict[1]}; "
                     f"back {'%.2f s' % (t_return - t_back) if t_return else 'never'} after the repair"
                     f"{'; ' + '; '.join(problems) if problems else ''}")

    def stop(self):
        self.unreachable("stop", lambda w: os.kill(self.bed.pid(w), signal.SIGSTOP),
                         lambda w: os.kill(self.bed.pid(w), signal.SIGCONT), hold=8.0)

    def partition(self):
        if not self.bed.netns:
            raise Skip("the bed runs on loopback (run it as root with --netns for partitions)")
        self.unreachable("partition", lambda w: self.bed.ctl("partition", w), lambda w: self.bed.ctl("heal", w),
                         hold=10.0)

    def linkdown(self):
        if not self.bed.netns:
            raise Skip("the bed runs on loopback (run it as root with --netns for link faults)")
        self.unreachable("linkdown", lambda w: self.bed.ctl("link-down", w), lambda w: self.bed.ctl("link-up", w),
                         hold=10.0, with_stream=False)

    # -- kill -9

    def kill9(self):
        self.ensure_live(3 if self.router else 1)
        wid = self.bed.live()[-1]
        self.warm(wid)
        load = Load(self.router, self.model, concurrency=3, num_predict=16).start() if self.router else None
        poller = MetricsPoller(self.router, wid).start() if self.router else None
        try:
            time.sleep(1.0 if self.router else 0)
            t0 = now()
            self.bed.ctl("kill", wid)
            t_gone = self.wait_gone(wid, LEASE_TTL + 5)
            time.sleep(2.0 if self.router else 0)
            t_end = now()
        finally:
            results = load.stop() if load else []
            history = poller.stop() if poller else []
        gone_txt = f"record gone {t_gone - t0:.2f} s after the kill" if t_gone else "record still there after 10 s"
        problems = []
        if t_gone is None or t_gone - t0 > LEASE_TTL + 1.0:
            problems.append(f"{gone_txt} (limit {LEASE_TTL + 1:g} s)")
        if not self.router:
            return self.verdict("kill9", not problems, f"(no router) {wid}: {gone_txt} (limit {LEASE_TTL + 1:g} s)")
        last = poller.last_dispatch_after(t0, t_end)
        if last == "unknown":
            last_txt = "router /metrics has no per-worker request counter"
        elif last is None:
            last_txt = "the router sent it no request after the kill"
        else:
            last_txt = f"last request routed to it {last - t0:.2f} s after the kill"
            if last - t0 > LEASE_TTL + 1.0:
                problems.append(last_txt + f" (limit {LEASE_TTL + 1:g} s)")
        meanwhile = [r for r in results if r.t_send >= t0 - 1.0]
        bad = [r for r in meanwhile if not r.ok or r.latency() > 20.0]
        if bad:
            problems.append(f"{len(bad)} of {len(meanwhile)} requests failed: {describe_failures(bad)}")
        log(f"  kill -9 {wid}: {gone_txt}; {last_txt}; {len(meanwhile)} requests since, {len(bad)} failed")
        self.verdict("kill9", not problems, f"{gone_txt} (limit {LEASE_TTL + 1:g} s); {last_txt}; "
                                            f"{len(meanwhile) - len(bad)}/{len(meanwhile)} requests complete"
                                            f"{'; ' + '; '.join(problems) if problems else ''}")

    # -- etcd lost for a while

    def router_workers(self):
        """The workers the router has up ({id}), from hearth_router_worker_up; None if unknown."""
        m = get_metrics(self.router, timeout=2.0)
        if m is None:
            return None
        ups = {labels.get("worker") or labels.get("node") for n, labels, v in m if n == "hearth_router_worker_up" and v == 1}
        return {u for u in ups if u} if any(n == "hearth_router_worker_up" for n, _, _ in m) else None

    def etcd(self):
        """etcd down for --etcd-down seconds; meanwhile a worker is killed (its record outlives
        the outage by one lease) and a new one starts (it can register only after the outage).
        After etcd returns: etcd's records, the router's workers and the live processes agree
        (converged), the new worker gets traffic, and so does another started after the return."""
        down = self.args.etcd_down
        self.ensure_live(3)
        load = Load(self.router, self.model, concurrency=2, num_predict=8, pause=0.05).start() if self.router else None
        poller = MetricsPoller(self.router).start() if self.router else None
        problems = []
        notes = []
        try:
            time.sleep(1.0 if self.router else 0)
            victim = self.bed.live()[0]
            t0 = now()
            self.bed.ctl("etcd-stop")
            t_stopped = now()
            time.sleep(min(2.0, down / 4))
            self.bed.ctl("kill", victim)
            t_victim = now()
            time.sleep(min(2.0, down / 4))
            t_nc = now()
            try:
                newcomer = self.bed.ctl("add-worker")
                notes.append(f"{newcomer} started during the outage (answering HTTP after {now() - t_nc:.2f} s)")
            except RuntimeError as e:
                newcomer = None
                problems.append(f"a worker could not start while etcd was down: {e}")
            time.sleep(max(0.0, down - (now() - t0)))
            t_back = now()
            self.bed.ctl("etcd-start")
            t_up = now()
            # Converged: etcd's ready records == the live workers == the router's workers.
            t_conv = None
            last = ""
            deadline = now() + LEASE_TTL + 10
            while now() < deadline:
                live = set(self.bed.live())
                n = self.bed.nodes()
                rec = {k for k, r in (n or {}).items() if r.get("state") == "ready"} if n is not None else None
                rw = self.router_workers() if self.router else live
                last = f"live {sorted(live)}, etcd {sorted(rec) if rec is not None else '?'}, router {sorted(rw) if rw is not None else '?'}"
                if rec == live and rw == live:
                    t_conv = now()
                    break
                time.sleep(0.1)
            if t_conv is None:
                conv_txt = f"not converged {LEASE_TTL + 10:g} s after etcd's return: {last}"
                problems.append(conv_txt)
            else:
                conv_txt = (f"converged {t_conv - t_up:.2f} s after etcd's return ({victim} killed during the outage "
                            f"gone, {newcomer} registered{', router agrees' if self.router else ''})")
            join_txts = []
            if self.router and newcomer:
                t_first = self.wait_in_rotation(load, newcomer, t_up, 10)
                if t_first is None:
                    problems.append(f"{newcomer} (started during the outage) got no request within 10 s of etcd's return")
                else:
                    join_txts.append(f"{newcomer} got traffic {max(0.0, t_first - t_up):.2f} s after etcd's return")
            # A worker started after the return.
            t_join = now()
            wid = self.bed.ctl("add-worker")
            t_reg = self.wait_registered(wid, 10)
            if t_reg is None:
                problems.append(f"{wid}, started after etcd's return, did not register within 10 s")
            elif self.router:
                t_first = self.wait_in_rotation(load, wid, t_join, 10)
                if t_first is None:
                    problems.append(f"{wid}, started after etcd's return: no request within 10 s of its registration")
                else:
                    join_txts.append(f"{wid} (started after the return) got traffic {max(0.0, t_first - t_reg):.2f} s "
                                     f"after registering")
            else:
                join_txts.append(f"{wid} registered {t_reg - t_join:.2f} s after its start")
            time.sleep(0.5)
        finally:
            results = load.stop() if load else []
            history = poller.stop() if poller else []
        join_txt = "; ".join(join_txts)
        for t in notes:
            log("  " + t)
        if not self.router:
            return self.verdict("etcd", not problems, f"(no router) etcd down {t_back - t_stopped:.1f} s; {conv_txt}; "
                                                      f"{join_txt}{'; ' + '; '.join(problems) if problems else ''}")
        during = [r for r in results if t_stopped <= r.t_send <= t_back]
        # The kill of a worker during the outage may fail requests only if not retried.
        bad = [r for r in results if not r.ok]
        if bad:
            problems.append(f"{len(bad)} of {len(results)} requests failed: {describe_failures(bad)}")
        if len(during) < 5:
            problems.append(f"only {len(during)} requests were answered while etcd was down")
        ups = [(t, e) for t, _, e in history if e is not None]
        down_seen = [t for t, e in ups if e == 0 and t_stopped <= t <= t_back]
        up_again = [t for t, e in ups if e == 1 and t > t_up]
        if not ups:
            etcd_txt = "router /metrics has no hearth_router_etcd_up"
            problems.append(etcd_txt)
        else:
            etcd_txt = (f"hearth_router_etcd_up 0 {min(down_seen) - t_stopped:.2f} s after the stop"
                        if down_seen else "hearth_router_etcd_up never 0 while etcd was down")
            etcd_txt += (f", 1 again {min(up_again) - t_up:.2f} s after the start" if up_again
                         else ", not 1 again after the start")
            if not down_seen or not up_again:
                problems.append(etcd_txt)
        log(f"  etcd down {t_back - t_stopped:.1f} s ({victim} killed {t_victim - t_stopped:.1f} s in): "
            f"{len(during)} requests answered meanwhile; {etcd_txt}")
        log(f"  {conv_txt}; {join_txt}")
        self.verdict("etcd", not problems, f"etcd down {t_back - t_stopped:.1f} s: "
                                           f"{len(during) - len([r for r in during if not r.ok])}/{len(during)} requests "
                                           f"answered meanwhile; {conv_txt}; {join_txt}"
                                           f"{'; ' + '; '.join(problems) if problems else ''}")


ALL = ["join", "drain", "term", "stop", "kill9", "partition", "linkdown", "etcd"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="the test bed's state directory")
    ap.add_argument("--testbed", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster-testbed.sh"))
    ap.add_argument("--model", default="stories260K")
    ap.add_argument("--itt", type=float, default=10.0, help="the router's inter-token timeout in seconds")
    ap.add_argument("--etcd-down", type=float, default=30.0, help="seconds etcd stays down in `etcd`")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("scenarios", nargs="*", default=ALL)
    args = ap.parse_args()
    random.seed(args.seed)
    for s in args.scenarios:
        if s not in ALL:
            ap.error(f"unknown scenario {s} (known: {', '.join(ALL)})")
    bed = Bed(args.dir, args.testbed)
    sc = Scenarios(bed, args)
    if not sc.router:
        log("cluster-faults: no router in this bed: the scenarios check registration only")
    t_all = now()
    for name in args.scenarios:
        log(f"== {name}")
        t = now()
        try:
            getattr(sc, name)()
        except Skip as e:
            log(f"SKIP {name}: {e}")
            sc.results.append((name, "SKIP", str(e)))
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            sc.verdict(name, False, f"{type(e).__name__}: {e}")
        log(f"  ({name}: {now() - t:.1f} s)")
    log(f"\ncluster-faults: summary ({now() - t_all:.0f} s, {'router ' + sc.router if sc.router else 'no router'})")
    for name, v, text in sc.results:
        log(f"  {v:4} {name:9} {text.splitlines()[0] if text else ''}")
    return 1 if any(v == "FAIL" for _, v, _ in sc.results) else 0


if __name__ == "__main__":
    sys.exit(main())
