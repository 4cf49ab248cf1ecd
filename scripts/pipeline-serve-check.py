#!/usr/bin/env python3
"""Part of CTest pipeline_mpi (scripts/test-pipeline.sh): `hearth serve --pipeline` under mpirun
against one `hearth serve`. Both serve the same --models-dir; every answer (greedy, raw prompt)
must be identical, one request at a time and 4 at once (continuous batching through the stages).

  pipeline-serve-check.py HEARTH MODELS_DIR MODEL RANKS [--watchdog | --supervise | --kill9 | --memory | --cluster]
"""
import concurrent.futures, json, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

HEARTH, MODELS, MODEL, RANKS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "One day, a bird"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, work, log):
    port = free_port()
    env = dict(os.environ, HEARTH_HOST=f"127.0.0.1:{port}", HEARTH_MODELS=os.path.join(work, "store"),
               HEARTH_NUM_PARALLEL="4", HEARTH_NUM_THREADS="1")
    p = subprocess.Popen(cmd + ["serve", "--models-dir", MODELS] + (["--pipeline"] if "mpirun" in cmd else []),
                         env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if p.poll() is not None:
            raise SystemExit(f"daemon exited ({p.returncode})")
        try:
            urllib.request.urlopen(url + "/", timeout=1).read()
            return p, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("daemon did not answer")


def generate(url, prompt):
    body = json.dumps({"model": MODEL, "prompt": prompt, "raw": True, "stream": False,
                       "options": {"temperature": 0, "num_predict": 32, "seed": 1}}).encode()
    req = urllib.request.Request(url + "/api/generate", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["response"]


def answers(url):
    one = [generate(url, p) for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        many = list(ex.map(lambda p: generate(url, p), PROMPTS))
    return one, many


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def rank_pids(p):
    """The hearth processes of an mpirun group, by OMPI_COMM_WORLD_RANK."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getsid(int(pid)) != p.pid:
                continue
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(e.split(b"=")[1])] = int(pid)
    return out


def resume_and_stop(p):
    """Wakes any stopped rank (so it can end), then stops the group."""
    for pid in rank_pids(p).values():
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    stop(p)


def watchdog(work):
    """A stage that stops answering (SIGSTOP): the request in flight ends with an error soon
    after HEARTH_PIPELINE_TIMEOUT, and the group ends (MPI_Abort) for a supervisor to restart."""
    os.environ["HEARTH_PIPELINE_TIMEOUT"] = "2s"
    log = open(os.path.join(work, "watchdog.log"), "w+")
    mpirun = ["mpirun", "--oversubscribe", "--mca", "btl", "tcp,self", "-np", str(RANKS), HEARTH]
    p, url = start(mpirun, work, log)
    try:
        generate(url, PROMPTS[0])  # loaded and answering
        pids = rank_pids(p)
        os.kill(pids[RANKS - 1], signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            r = generate(url, PROMPTS[1])
            err = f"answered {r!r}"
        except urllib.error.HTTPError as e:
            err = None if e.code >= 500 else f"HTTP {e.code}"
            how = f"HTTP {e.code} {e.read()[:120]!r}"
        except OSError as e:  # the group went before the answer: also an error for the client
            err, how = None, f"connection error {e}"
        took = time.monotonic() - t0
        p.wait(timeout=30)
        gone = time.monotonic() - t0
    finally:
        resume_and_stop(p)
    log.seek(0)
    text = log.read()
    if err or took > 10 or "did not answer" not in text:
        print(f"FAIL watchdog: {err or ''} after {took:.1f} s\n{text}")
        sys.exit(1)
    print(f"ok   watchdog: a stopped stage failed the request after {took:.1f} s (timeout 2 s: {how}); the group ended after {gone:.1f} s")


def supervised(work):
    """The same fault under `hearth pipeline-supervise`: the request in flight fails, the
    supervisor starts the group again, and it serves again within 30 s."""
    os.environ["HEARTH_PIPELINE_TIMEOUT"] = "2s"
    log = open(os.path.join(work, "supervised.log"), "w+")
    cmd = [HEARTH, "pipeline-supervise", "--pause", "0.5", "--", "mpirun", "--oversubscribe", "--mca", "btl", "tcp,self",
           "-np", str(RANKS), HEARTH]
    p, url = start(cmd, work, log)
    try:
        want = generate(url, PROMPTS[0])
        os.kill(rank_pids(p)[RANKS - 1], signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            generate(url, PROMPTS[0])
            failed = False
        except OSError:
            failed = True
        back, got = None, None
        while time.monotonic() - t0 < 40:
            try:
                got = generate(url, PROMPTS[0])
                back = time.monotonic() - t0
                break
            except OSError:
                time.sleep(0.5)
    finally:
        resume_and_stop(p)
    log.seek(0)
    text = log.read()
    if not failed or back is None or back > 30 or got != want or "starting it again" not in text:
        print(f"FAIL supervise: failed={failed} back={back} same={got == want}\n{text}")
        sys.exit(1)
    print(f"ok   pipeline-supervise: a stopped stage failed its request, the group served again {back:.1f} s after the fault, same answer")


def stream(url, prompt, n=400):
    """A streamed generation: ("ok", None), ("error", message) from an error line, or
    ("failed", why) when the request or the stream broke without one."""
    body = json.dumps({"model": MODEL, "prompt": prompt, "stream": True, "options": {"num_predict": n, "seed": 1}}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/api/generate", data=body), timeout=60) as r:
            last = None
            for line in r:
                last = json.loads(line)
                if "error" in last:
                    return "error", last["error"]
            return ("ok", None) if last and last.get("done") else ("failed", "the stream ended without done")
    except urllib.error.HTTPError as e:
        return "failed", f"HTTP {e.code}"
    except OSError as e:
        return "failed", str(e)


def kill9(work):
    """kill -9 of the last stage while 4 clients stream: every request in flight ends with an
    error line within 2 s, `hearth pipeline-supervise` has the group serving again within 30 s,
    and no request started after that fails."""
    os.environ["HEARTH_DEBUG_TOKEN_DELAY"] = "5"  # streams long enough to be cut mid-way
    log = open(os.path.join(work, "kill9.log"), "w+")
    cmd = [HEARTH, "pipeline-supervise", "--pause", "0.5", "--", "mpirun", "--oversubscribe", "--mca", "btl", "tcp,self",
           "-np", str(RANKS), HEARTH]
    p, url = start(cmd, work, log)
    results, stop_at = [], [time.monotonic() + 120]
    lock = threading.Lock()

    def client(i):
        while time.monotonic() < stop_at[0]:
            t0 = time.monotonic()
            r = stream(url, PROMPTS[i % len(PROMPTS)])
            with lock:
                results.append((t0, time.monotonic(), r))
            if r[0] != "ok":
                time.sleep(0.05)
    try:
        if stream(url, PROMPTS[0], 8)[0] != "ok":
            raise SystemExit("FAIL kill9: the group did not answer before the fault")
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        victim = rank_pids(p)[RANKS - 1]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = None
        while time.monotonic() - t_kill < 40 and back is None:
            time.sleep(0.1)
            with lock:
                oks = [a for a, b, r in results if r[0] == "ok" and a > t_kill]
            if oks:
                back = min(oks) - t_kill  # the first request started after the fault that succeeded
        stop_at[0] = time.monotonic() + 3  # keep the load on for 3 s more
        for t in threads:
            t.join(timeout=90)
    finally:
        resume_and_stop(p)
    inflight = [(b - t_kill, r) for a, b, r in results if a < t_kill < b]
    after = [r for a, b, r in results if back is not None and a - t_kill >= back]
    bad_after = [r for r in after if r[0] != "ok"]
    log.seek(0)
    text = log.read()
    problems = []
    if len(inflight) != 4:
        problems.append(f"{len(inflight)} requests were in flight at the kill, expected 4")
    for end, r in inflight:
        if r[0] != "error" or end > 2.0:
            problems.append(f"an in-flight request ended {end:.2f} s after the kill with {r}")
    if back is None or back > 30:
        problems.append(f"not serving again within 30 s (back={back})")
    if bad_after or not after:
        problems.append(f"{len(bad_after)} of {len(after)} requests after recovery failed: {bad_after[:3]}")
    if problems:
        print("FAIL kill9: " + "; ".join(problems) + "\n" + text[-3000:])
        sys.exit(1)
    slowest = max(end for end, _ in inflight)
    print(f"ok   kill -9 of stage {RANKS - 1}: {len(inflight)} requests in flight ended with an error line within "
          f"{slowest:.2f} s ({inflight[0][1][1][:60]!r}); serving again {back:.1f} s after the fault; "
          f"{len(after)} requests after that, none failed")


def logged_split(log):
    log.seek(0)
    lines = [l for l in log.read().splitlines() if " split 0-" in l]
    return lines[0].split(" split ")[-1] if lines else None


def memory(work):
    """HEARTH_MAX_MEMORY per rank: a model one daemon refuses for its budget runs split over 2
    ranks with the same budget each (same greedy answer as an unlimited daemon), and ranks with
    unequal budgets get unequal shares of the layers (--split auto)."""
    mpirun = ["mpirun", "--oversubscribe", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
              "--mca", "oob_tcp_if_include", "lo"]
    size = os.path.getsize(os.path.join(MODELS, MODEL + ".gguf"))
    budget = str(size * 85 // 100)  # bytes: 85% of the file, so one process cannot hold model + KV cache
    problems = []

    def run(cmd, env_extra, name):
        log = open(os.path.join(work, name + ".log"), "w+")
        saved = dict(os.environ)
        os.environ.update(env_extra)
        try:
            p, url = start(cmd, work, log)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            try:
                return ("ok", generate(url, PROMPTS[0])), log
            except urllib.error.HTTPError as e:
                return ("error", e.read().decode(errors="replace")), log
        finally:
            stop(p)

    (kind, want), _ = run([HEARTH], {}, "unlimited")
    if kind != "ok":
        raise SystemExit(f"FAIL memory: the unlimited daemon failed: {want}")
    (kind, msg), _ = run([HEARTH], {"HEARTH_MAX_MEMORY": budget}, "one")
    if kind != "error" or "HEARTH_MAX_MEMORY" not in msg:
        problems.append(f"one daemon with HEARTH_MAX_MEMORY={budget} should refuse the model, got {kind} {msg[:100]!r}")
    (kind, got), log = run(mpirun + ["-np", "2", HEARTH], {"HEARTH_MAX_MEMORY": budget}, "two")
    even = logged_split(log)
    if kind != "ok" or got != want:
        problems.append(f"2 ranks with HEARTH_MAX_MEMORY={budget} each: {kind} {got[:100]!r}, want {want[:60]!r}")
    big, small = str(size * 4), str(size * 4 // 10)
    uneven_cmd = mpirun + ["-np", "1", "-x", "HEARTH_MAX_MEMORY=" + big, HEARTH, "serve", "--models-dir", MODELS, "--pipeline", ":",
                           "-np", "1", "-x", "HEARTH_MAX_MEMORY=" + small, HEARTH]
    (kind, got), log = run(uneven_cmd, {}, "uneven")
    uneven = logged_split(log)
    first = lambda split: int(split.split(" | ")[0].split("-")[1]) if split else -1
    if kind != "ok" or got != want or first(uneven) <= first(even):
        problems.append(f"unequal budgets ({big} and {small} bytes): {kind}, split {uneven} vs even {even}, same answer {got == want}")
    if problems:
        print("FAIL memory: " + "; ".join(problems))
        sys.exit(1)
    print(f"ok   memory: one daemon refuses {MODEL} with HEARTH_MAX_MEMORY={budget} B, 2 ranks with that budget each serve it "
          f"(split {even}, same answer); budgets {big} B and {small} B split it {uneven}")


def cluster(work):
    """The group registers in etcd as one node (`hearth serve --pipeline --cluster`): its record
    names the stages; after kill -9 of a stage the record leaves at once (rank 0 revokes its
    lease on mpirun's SIGTERM) and the supervised group registers again when it is back."""
    import shutil
    etcd_bin = shutil.which("etcd")
    if not etcd_bin:
        print("skip cluster: etcd not found (apt-get install etcd-server)")
        return
    cport, pport = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{cport}"
    etcd = subprocess.Popen([etcd_bin, "--name", "pipe", "--data-dir", os.path.join(work, "etcd"),
                             "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-cluster", f"pipe=http://127.0.0.1:{pport}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    spec = f"etcd://127.0.0.1:{cport}"

    def listed():
        """The NODE cells of `hearth cluster status` (None when it fails)."""
        st = subprocess.run([HEARTH, "cluster", "status", "--cluster", spec, "--cluster-name", "pipe"],
                            capture_output=True, text=True, timeout=20)
        if st.returncode != 0:
            return None
        return [l for l in st.stdout.splitlines()[1:] if l.strip()]

    def wait_for(pred, limit):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            rows = listed()
            if rows is not None and pred(rows):
                return time.monotonic() - t0, rows
            time.sleep(0.1)
        return None, listed()

    log = open(os.path.join(work, "cluster.log"), "w+")
    cmd = [HEARTH, "pipeline-supervise", "--pause", "0.5", "--", "mpirun", "--oversubscribe", "--mca", "btl", "tcp,self",
           "-np", str(RANKS), HEARTH]
    os.environ.update({"HEARTH_CLUSTER": spec, "HEARTH_CLUSTER_NAME": "pipe", "HEARTH_NODE_ID": "group-a",
                       "HEARTH_DEBUG_TOKEN_DELAY": "5"})
    problems = []
    p = None
    try:
        for _ in range(100):  # etcd up
            if listed() is not None:
                break
            time.sleep(0.1)
        p, url = start(cmd, work, log)
        stages = f"group-a ({RANKS} stages)"
        up, rows = wait_for(lambda rows: any(r.startswith(stages) for r in rows), 15)
        if up is None:
            problems.append(f"the group never registered as one node {stages!r}: {rows}")
        elif len(rows) != 1:
            problems.append(f"{len(rows)} nodes registered for one group: {rows}")
        want = generate(url, PROMPTS[0])
        holder = []
        streaming = threading.Thread(target=lambda: holder.append(stream(url, PROMPTS[1])))
        streaming.start()
        time.sleep(0.5)
        os.kill(rank_pids(p)[RANKS - 1], signal.SIGKILL)
        gone, rows = wait_for(lambda rows: not any(r.startswith("group-a") for r in rows), 10)
        if gone is None:
            problems.append(f"the record stayed after a stage was killed: {rows}")
        back, rows = wait_for(lambda rows: any(r.startswith(stages) for r in rows), 40)
        if back is None:
            problems.append(f"the group did not register again: {rows}")
        streaming.join(timeout=30)
        if not holder or holder[0][0] != "error":
            problems.append(f"the stream in flight at the kill ended with {holder}")
        got = None
        for _ in range(100):
            try:
                got = generate(url, PROMPTS[0])
                break
            except OSError:
                time.sleep(0.2)
        if got != want:
            problems.append(f"after recovery: {got!r}, want {want!r}")
    finally:
        if p:
            resume_and_stop(p)
        for k in ("HEARTH_CLUSTER", "HEARTH_CLUSTER_NAME", "HEARTH_NODE_ID", "HEARTH_DEBUG_TOKEN_DELAY"):
            os.environ.pop(k, None)
        etcd.terminate()
        etcd.wait()
    if problems:
        log.seek(0)
        print("FAIL cluster: " + "; ".join(problems) + "\n" + log.read()[-3000:])
        sys.exit(1)
    print(f"ok   cluster: the {RANKS}-stage group is one node in etcd ({stages!r}, listed {up:.1f} s after it answered); "
          f"kill -9 of a stage: record gone after {gone:.1f} s, the stream in flight ended with an error, "
          f"registered again {back:.1f} s later and answers the same")


MODES = {"--cluster": cluster, "--memory": memory, "--kill9": kill9, "--watchdog": watchdog, "--supervise": supervised}

with tempfile.TemporaryDirectory() as work:
    if len(sys.argv) > 5:
        if sys.argv[5] not in MODES:
            raise SystemExit(f"unknown mode {sys.argv[5]}: one of {', '.join(MODES)}")
        MODES[sys.argv[5]](work)
        sys.exit(0)
    log1, log2 = open(os.path.join(work, "one.log"), "w+"), open(os.path.join(work, "pipe.log"), "w+")
    p1, url1 = start([HEARTH], work, log1)
    try:
        want_one, want_many = answers(url1)
    finally:
        stop(p1)
    mpirun = ["mpirun", "--oversubscribe", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
              "--mca", "oob_tcp_if_include", "lo", "-np", str(RANKS), HEARTH]
    p2, url2 = start(mpirun, work, log2)
    try:
        got_one, got_many = answers(url2)
    finally:
        stop(p2)
    log2.seek(0)
    log = log2.read()
    ok = True
    for name, want, got in (("one at a time", want_one, got_one), ("4 at once", want_many, got_many)):
        for prompt, w, g in zip(PROMPTS, want, got):
            if w != g:
                ok = False
                print(f"FAIL serve {RANKS} ranks, {name}: {prompt!r}\n  want {w!r}\n  got  {g!r}")
    if " split 0-" not in log:  # the group split the model it loaded
        ok = False
        print("FAIL serve: the daemon did not log its split:\n" + log)
    if not ok:
        print(log)
        sys.exit(1)
    split = [l for l in log.splitlines() if " split 0-" in l][0].split(" split ")[-1]
    print(f"ok   serve --pipeline, {RANKS} ranks (layers {split}): {len(PROMPTS)} prompts one at a time and 4 at once identical to one daemon")
    print(f"     e.g. {PROMPTS[0]!r} -> {got_one[0][:60]!r}")
