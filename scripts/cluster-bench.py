#!/usr/bin/env python3
"""The router's measurements of issue 13 (python3 standard library; beds of
scripts/cluster-testbed.sh on loopback; `hearth bench serve` for the load of b and c).

  cluster-bench.py [--hearth PATH] [--json OUT] [--no-wait] [affinity] [overhead] [scale]

affinity  16 interleaved multi-turn chats x 6 turns over 4 workers: stories260K made with
          `hearth create` from a Modelfile with a compact TEMPLATE (the messages' contents, one
          per line) and a SYSTEM prompt shared by every chat; 8 tokens per answer (num_predict
          8, temperature 0). Each turn sends the 16 chats' next message in a shuffled order
          (seeded), --chat-concurrency at a time (default 4). Reported: the share of prompt
          tokens served from the workers' prefix caches, sum(hearth_prompt_cached_tokens_total)
          / sum(hearth_prompt_tokens_total) over the workers, for --policy cache_aware and
          round_robin through the router, and for a client that pins each chat to one worker
          (chat i -> worker i mod 4, no router). A fresh bed (empty caches) for each.
overhead  stories260K, one worker: `hearth bench serve` straight to the worker and through the
          router, alternately, --rounds times (default 3): TTFT p50 at concurrency 1 (limit:
          router <= direct + 2 ms) and output tokens/s at concurrency 8 (limit: >= 95% of
          direct); medians over the rounds. Each run has its own prompt seed (no run is
          served from the cache of an earlier one).
scale     a TinyLlama-1.1B-shape Q4_0 model made here with `hearth dev make-model`, created with
          PARAMETER num_thread 1 (the daemon's -t 1), two workers pinned to CPU 0 and CPU 1
          (taskset): one worker alone at concurrency C, the two behind the router at 2C (C per
          worker; --scale-concurrency, default 4), and for reference the two straight from two
          clients at C each (what the machine gives without a router). Limit: >= 1.8x the
          output tokens/s of one worker.

Nothing is measured while a compiler runs on the machine (pgrep cc1plus): the script waits
for quiet first (up to --max-wait seconds; --no-wait skips the check). Numbers are printed as
a table and, with --json, written as JSON.
"""
import argparse
import atexit
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TESTBED = os.path.join(HERE, "cluster-testbed.sh")
_spec = importlib.util.spec_from_file_location("cluster_faults", os.path.join(HERE, "cluster-faults.py"))
cf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cf)

SYSTEM = ("You are a friendly storyteller for small children. Every story has a kind hero, a small "
          "problem and a happy ending. Use short sentences and simple words. The hero is brave and "
          "helps a friend. There is a dog, a cat and a big red ball in every story.")
TEMPLATE = "{% for m in messages %}{{ m.content }}\n{% endfor %}"
NAMES = ("Tom Lily Sam Anna Ben Mia Max Lucy Tim Sue Bob Amy Jack Kate Dan Zoe").split()
THINGS = ("tree boat kite cake moon park bird frog fish hat box car sun star ship toy").split()


def log(*a):
    print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_quiet(max_wait):
    """Until no compiler runs on the machine (others share it)."""
    t0 = time.time()
    said = False
    while True:
        r = subprocess.run(["pgrep", "-f", "cc1plus"], capture_output=True)
        if r.returncode != 0:
            return
        if time.time() - t0 > max_wait:
            log(f"cluster-bench: compilers still running after {max_wait} s: measuring anyway (numbers suspect)")
            return
        if not said:
            log("cluster-bench: a compiler is running on this machine: waiting for quiet before measuring")
            said = True
        time.sleep(10)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def compiler_running():
    return subprocess.run(["pgrep", "-f", "cc1plus"], capture_output=True).returncode == 0


def quiet_run(args, what, fn, tries=4):
    """fn() after waiting for quiet; again (up to `tries` times) when a compiler started
    meanwhile (the machine is shared): a measurement is kept only if none ran at its end."""
    for i in range(tries):
        if not args.no_wait:
            wait_quiet(args.max_wait)
        r = fn()
        if args.no_wait or not compiler_running():
            return r
        log(f"  ({what}: a compiler started during the run: measuring again)")
    log(f"  ({what}: compilers kept starting: the last run is kept, suspect)")
    return r


# ---- beds

class Beds:
    """Test beds under one temporary folder; each `up` is taken down by `down` or at exit."""

    def __init__(self, hearth, work):
        self.hearth, self.work = hearth, work
        self.current = None
        self.n = 0

    def up(self, workers, router=True, env=None):
        self.down()
        self.n += 1
        d = os.path.join(self.work, f"bed{self.n}")
        e = dict(os.environ)
        e["TB_OWNER"] = str(os.getpid())
        e.update(env or {})
        args = [TESTBED, "--dir", d, "--hearth", self.hearth] + ([] if router else ["--no-router"]) + ["up", str(workers)]
        self.current = d  # down() takes it down even if `up` fails half-way
        r = subprocess.run(args, env=e, capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError(f"the test bed did not come up: {r.stderr[-1500:]}")
        bed = cf.Bed(d, TESTBED)
        if router and not bed.router_url():
            raise RuntimeError("the bed has no router (does this hearth have `hearth router`?)")
        return bed

    def down(self):
        if self.current:
            subprocess.run([TESTBED, "--dir", self.current, "down"], capture_output=True, timeout=120)
            self.current = None


def hearth_create(hearth, store, name, modelfile_text, workdir):
    """`hearth create NAME -f Modelfile` against a daemon of its own on `store`."""
    mf = os.path.join(workdir, f"Modelfile.{name.replace(':', '_').replace('/', '_')}")
    with open(mf, "w") as f:
        f.write(modelfile_text)
    port = free_port()
    env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{port}", HEARTH_MODELS=store)
    logf = open(os.path.join(workdir, "create-daemon.log"), "ab")
    d = subprocess.Popen([hearth, "serve"], env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if cf.http_call(f"http://127.0.0.1:{port}", "GET", "/api/version", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        r = subprocess.run([hearth, "create", name, "-f", mf], env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"hearth create {name} failed: {r.stdout[-500:]} {r.stderr[-1000:]}")
    finally:
        d.terminate()
        d.wait(30)
        logf.close()


def worker_prompt_tokens(url, model_prefix):
    """(prompt tokens, cached prompt tokens) summed over the series of a worker's /metrics
    whose model label starts with model_prefix (all series when there is no model label)."""
    s = cf.get_metrics(url, timeout=5)
    if s is None:
        raise RuntimeError(f"GET {url}/metrics failed")
    tot = cached = 0.0
    seen = set()
    for name, labels, v in s:
        if name not in ("hearth_prompt_tokens_total", "hearth_prompt_cached_tokens_total"):
            continue
        seen.add(name)
        m = labels.get("model")
        if m is not None and not m.lower().startswith(model_prefix.lower()):
            continue
        if name == "hearth_prompt_tokens_total":
            tot += v
        else:
            cached += v
    if len(seen) < 2:
        raise RuntimeError(f"{url}/metrics lacks hearth_prompt_tokens_total or hearth_prompt_cached_tokens_total")
    return tot, cached


# ---- a: prefix affinity

def chat_workload(targets, model, chats, turns, concurrency, seed):
    """targets(i) -> base URL for chat i. Returns (requests, failures, per-node counts, seconds)."""
    rnd = random.Random(seed)
    hist = [[] for _ in range(chats)]
    nodes = {}
    fails = []
    mu = threading.Lock()

    def one(i, t):
        msg = f"{NAMES[i % len(NAMES)]} and the {THINGS[(i * 5 + t) % len(THINGS)]}, part {t + 1}: what happened next?"
        messages = hist[i] + [{"role": "user", "content": msg}]
        body = json.dumps({"model": model, "messages": messages, "stream": False,
                           "options": {"num_predict": 8, "temperature": 0}})
        try:
            st, headers, data = cf.http_call(targets(i), "POST", "/api/chat", body, timeout=120)
        except OSError as e:
            with mu:
                fails.append(f"chat {i} turn {t}: {e}")
            return
        node = dict((k.lower(), v) for k, v in headers).get(cf.NODE_HEADER.lower(), targets(i))
        if st != 200:
            with mu:
                fails.append(f"chat {i} turn {t}: HTTP {st} {data[:200]!r}")
            return
        reply = json.loads(data)["message"]["content"]
        with mu:
            nodes[node] = nodes.get(node, 0) + 1
        hist[i] = messages + [{"role": "assistant", "content": reply}]

    t0 = time.monotonic()
    for t in range(turns):
        order = list(range(chats))
        rnd.shuffle(order)
        with ThreadPoolExecutor(concurrency) as ex:
            list(ex.map(lambda i: one(i, t), order))
    return chats * turns, fails, nodes, time.monotonic() - t0


def bench_affinity(args, beds, work, out):
    store = os.path.join(work, "affinity-store")
    os.makedirs(store, exist_ok=True)
    model = "affinity"
    hearth_create(args.hearth, store, model,
                  f'FROM {args.stories}\nSYSTEM """{SYSTEM}"""\nTEMPLATE """{TEMPLATE}"""\n'
                  "PARAMETER num_predict 8\nPARAMETER temperature 0\n", work)
    env = {"TB_STORE_TEMPLATE": store}
    res = {}
    for policy in args.policies.split(","):
        pinned = policy == "pinned"
        e = dict(env)
        if not pinned:
            e["TB_ROUTER_ARGS"] = f"--policy {policy}"
        bed = beds.up(4, router=not pinned, env=e)
        urls = [bed.url(w) for w in bed.workers()]
        router = bed.router_url()
        # Warm: the model loads on each worker (a request of its own, not a chat's prefix).
        for u in urls:
            cf.generate(u, model, 1, prompt="warm up", timeout=60)
        base = [worker_prompt_tokens(u, model) for u in urls]
        wait_quiet(args.max_wait) if not args.no_wait else None
        targets = (lambda i: urls[i % len(urls)]) if pinned else (lambda i: router)
        n, fails, nodes, secs = chat_workload(targets, model, args.chats, args.turns, args.chat_concurrency, args.seed)
        after = [worker_prompt_tokens(u, model) for u in urls]
        tot = sum(a[0] - b[0] for a, b in zip(after, base))
        cached = sum(a[1] - b[1] for a, b in zip(after, base))
        ratio = cached / tot if tot else 0.0
        by_url = {bed.url(w): w for w in bed.workers()}
        res[policy] = {"ratio": round(ratio, 4), "prompt_tokens": tot, "cached_tokens": cached, "requests": n,
                       "failed": len(fails), "seconds": round(secs, 2),
                       "per_worker": {by_url.get(k, k): v for k, v in sorted(nodes.items())}}
        log(f"  affinity {policy:12} cached/prompt tokens {cached:.0f}/{tot:.0f} = {ratio:.3f}; {n} requests in "
            f"{secs:.1f} s, {len(fails)} failed; per worker {res[policy]['per_worker']}")
        if fails:
            log("    first failures: " + "; ".join(fails[:3]))
    beds.down()
    out["affinity"] = res
    parts = []
    for policy, r in res.items():
        p = f"{policy} {r['ratio']:.3f}"
        if policy == "cache_aware":
            p += f" (limit >= 0.80) {'PASS' if r['ratio'] >= 0.80 else 'FAIL'}"
        parts.append(p)
    log("affinity: " + "; ".join(parts))


# ---- b: overhead

def bench_serve(hearth, url, model, concurrency, requests, prompt_len, gen_len, seed):
    r = subprocess.run([hearth, "bench", "serve", "--url", url, "-m", model, "--concurrency", str(concurrency),
                        "--requests", str(requests), "--prompt-len", str(prompt_len), "--gen-len", str(gen_len),
                        "--temperature", "0", "--seed", str(seed), "-o", "json"],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"hearth bench serve {url} failed: {r.stderr[-800:]}")
    j = json.loads(r.stdout)[0]
    if j.get("failed"):
        raise RuntimeError(f"hearth bench serve {url}: {j['failed']} requests failed")
    return j


def bench_overhead(args, beds, work, out):
    bed = beds.up(1, router=True)
    direct = bed.url(bed.workers()[0])
    router = bed.router_url()
    model = "stories260K"
    for u in (direct, router):
        bench_serve(args.hearth, u, model, 1, 4, 32, 8, 999)  # warm: load, connections
    if not args.no_wait:
        wait_quiet(args.max_wait)
    ttft = {"direct": [], "router": []}
    tps = {"direct": [], "router": []}
    cpu = {"direct": [], "router": []}  # CPU seconds per 1000 output tokens at c8: worker, router
    router_pid = int(open(os.path.join(bed.dir, "router.pid")).read())
    worker_pid = bed.pid(bed.workers()[0])
    seed = 1000
    for rnd in range(args.rounds):
        for name, u in (("direct", direct), ("router", router)) if rnd % 2 == 0 else (("router", router), ("direct", direct)):
            seed += 2

            def run():
                j1 = bench_serve(args.hearth, u, model, 1, args.c1_requests, 64, 16, seed)
                c0 = (cpu_seconds(worker_pid), cpu_seconds(router_pid))
                j8 = bench_serve(args.hearth, u, model, 8, args.c8_requests, 64, 64, seed + 1)
                c1 = (cpu_seconds(worker_pid), cpu_seconds(router_pid))
                k = max(1, j8["total_output_tokens"]) / 1000
                return j1, j8, ((c1[0] - c0[0]) / k, (c1[1] - c0[1]) / k)

            j1, j8, per_k = quiet_run(args, f"overhead {name}", run)
            ttft[name].append(j1["p50_ttft_ms"])
            tps[name].append(j8["output_tokens_per_s"])
            cpu[name].append([round(per_k[0], 4), round(per_k[1], 4)])
            log(f"  overhead round {rnd + 1} {name:6}: c1 TTFT p50 {j1['p50_ttft_ms']:.2f} ms; "
                f"c8 {j8['output_tokens_per_s']:.0f} output tok/s; CPU s per 1000 tokens: worker {per_k[0]:.3f}"
                f"{', router %.3f' % per_k[1] if name == 'router' else ''}")
    beds.down()
    med = {k: statistics.median(v) for k, v in ttft.items()}
    medt = {k: statistics.median(v) for k, v in tps.items()}
    diff = med["router"] - med["direct"]
    ratio = medt["router"] / medt["direct"] if medt["direct"] else 0.0
    out["overhead"] = {"ttft_p50_ms": med, "ttft_p50_ms_rounds": ttft, "ttft_diff_ms": round(diff, 3),
                       "c8_output_tok_s": medt, "c8_output_tok_s_rounds": tps, "c8_ratio": round(ratio, 4),
                       "c8_cpu_s_per_1000_tokens_worker_router": cpu}
    log(f"overhead: TTFT p50 c1 direct {med['direct']:.2f} ms, router {med['router']:.2f} ms (+{diff:.2f} ms, "
        f"limit 2 ms) {'PASS' if diff <= 2.0 else 'FAIL'}; c8 output tok/s direct {medt['direct']:.0f}, router "
        f"{medt['router']:.0f} ({ratio * 100:.1f}%, limit >= 95%) {'PASS' if ratio >= 0.95 else 'FAIL'}")


# ---- c: scale

def bench_scale(args, beds, work, out):
    gguf = os.path.join(work, "tinyllama-1.1b-q4_0.gguf")
    log("  scale: making the TinyLlama-1.1B-shape Q4_0 model (hearth dev make-model)")
    r = subprocess.run([args.hearth, "dev", "make-model", gguf, "--preset", "tinyllama-1.1b", "--type", "q4_0",
                        "--seed", "7"], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"hearth dev make-model failed: {r.stderr[-800:]}")
    store = os.path.join(work, "scale-store")
    os.makedirs(store, exist_ok=True)
    model = "tinyllama-t1"
    hearth_create(args.hearth, store, model, f"FROM {gguf}\nPARAMETER num_thread 1\n", work)
    os.unlink(gguf)  # the store has its copy
    c = args.scale_concurrency
    res = {}
    # One bed, both workers warm: one worker alone (the other idle), the two straight from two
    # clients (what the machine gives without a router), then the two behind the router.
    env = {"TB_STORE_TEMPLATE": store, "TB_WORKER_PREFIX_w1": "taskset -c 0", "TB_WORKER_PREFIX_w2": "taskset -c 1",
           "TB_WORKER_ENV": f"HEARTH_NUM_PARALLEL={max(4, c)}"}
    bed = beds.up(2, router=True, env=env)
    w1, w2 = (bed.url(w) for w in bed.workers()[:2])
    router = bed.router_url()
    for u in (w1, w2):  # load the model on each worker first
        cf.generate(u, model, 2, prompt="warm up", timeout=600)
    st, _, body = cf.http_call(w1, "POST", "/api/show", json.dumps({"model": model}), timeout=30)
    params = json.loads(body).get("parameters", "") if st == 200 else f"HTTP {st}"
    log(f"  scale: {model} parameters: {' '.join(str(params).split())}")
    nreq = args.scale_requests

    def record(name, conc, js):
        tok = sum(j["output_tokens_per_s"] for j in js)
        res.setdefault(name, []).append({"concurrency": conc, "output_tok_s": round(tok, 2),
                                         "p50_ttft_ms": max(j["p50_ttft_ms"] for j in js),
                                         "requests": sum(j["completed"] for j in js),
                                         "duration_s": max(j["duration_s"] for j in js)})
        log(f"  scale {name:30}: c{conc} {tok:.1f} output tok/s ({res[name][-1]['requests']} requests in "
            f"{res[name][-1]['duration_s']:.1f} s)")

    for rnd in range(args.scale_rounds):
        if not args.no_wait:
            wait_quiet(args.max_wait)
        seed = 4242 + 10 * rnd
        record("one worker", c, quiet_run(args, "scale, one worker", lambda: [
            bench_serve(args.hearth, w1, model, c, nreq, 32, args.scale_gen, seed)]))
        record("two workers + router", 2 * c, quiet_run(args, "scale, router", lambda: [
            bench_serve(args.hearth, router, model, 2 * c, 2 * nreq, 32, args.scale_gen, seed + 1)]))

        def split():
            with ThreadPoolExecutor(2) as ex:
                return list(ex.map(lambda a: bench_serve(args.hearth, a[0], model, c, nreq, 32, args.scale_gen, a[1]),
                                   [(w1, seed + 2), (w2, seed + 3)]))
        record("two workers, client split (no router)", 2 * c, quiet_run(args, "scale, client split", split))
    beds.down()
    med = {k: statistics.median(r["output_tok_s"] for r in v) for k, v in res.items()}
    ratio = med["two workers + router"] / med["one worker"]
    direct = med["two workers, client split (no router)"] / med["one worker"]
    res["ratio"] = round(ratio, 3)
    res["ratio_client_split"] = round(direct, 3)
    out["scale"] = res
    log(f"scale: 2 workers behind the router give {ratio:.2f}x one worker's output tok/s (limit >= 1.8x) "
        f"{'PASS' if ratio >= 1.8 else 'FAIL'}; the same 2 workers without a router (2 clients): {direct:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hearth", default=os.path.join(REPO, "build", "hearth"))
    ap.add_argument("--shared", default=os.environ.get("HEARTH_SHARED_DIR", os.path.join(REPO, "..", "shared")))
    ap.add_argument("--json", help="write the numbers here as JSON")
    ap.add_argument("--no-wait", action="store_true", help="measure even while compilers run")
    ap.add_argument("--max-wait", type=int, default=1800)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--chats", type=int, default=16)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--chat-concurrency", type=int, default=4)
    ap.add_argument("--policies", default="cache_aware,round_robin,pinned", help="affinity: which of them")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--c1-requests", type=int, default=100)
    ap.add_argument("--c8-requests", type=int, default=400)
    ap.add_argument("--scale-concurrency", type=int, default=4)
    ap.add_argument("--scale-requests", type=int, default=32, help="requests per worker")
    ap.add_argument("--scale-gen", type=int, default=64)
    ap.add_argument("--scale-rounds", type=int, default=1)
    ap.add_argument("what", nargs="*", default=["affinity", "overhead", "scale"])
    args = ap.parse_args()
    for w in args.what:
        if w not in ("affinity", "overhead", "scale"):
            ap.error(f"unknown measurement {w}")
    args.hearth = os.path.realpath(args.hearth)
    args.stories = os.path.realpath(os.path.join(args.shared, "models", "stories260K.gguf"))
    if not os.path.isfile(args.stories):
        ap.error(f"missing {args.stories}")
    work = tempfile.mkdtemp(prefix="hearth-cluster-bench.")
    beds = Beds(args.hearth, work)

    def cleanup():
        beds.down()
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = {"hearth": args.hearth, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    rc = 0
    for w in args.what:
        log(f"== {w}")
        try:
            {"affinity": bench_affinity, "overhead": bench_overhead, "scale": bench_scale}[w](args, beds, work, out)
        except Exception as e:  # noqa: BLE001
            log(f"{w}: ERROR: {e}")
            out[w] = {"error": str(e)}
            rc = 1
            beds.down()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return rc


if __name__ == "__main__":
    sys.exit(main())
