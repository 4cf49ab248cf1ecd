#!/usr/bin/env python3
"""Part of CTest pipeline_mpi (scripts/test-pipeline.sh): `hearth serve --pipeline` under mpirun
against one `hearth serve`. Both serve the same --models-dir; every answer (greedy, raw prompt)
must be identical, one request at a time and 4 at once (continuous batching through the stages).

  pipeline-serve-check.py HEARTH MODELS_DIR MODEL RANKS [--watchdog | --supervise]
"""
import concurrent.futures, json, os, signal, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request

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


with tempfile.TemporaryDirectory() as work:
    if len(sys.argv) > 5 and sys.argv[5] == "--watchdog":
        watchdog(work)
        sys.exit(0)
    if len(sys.argv) > 5 and sys.argv[5] == "--supervise":
        supervised(work)
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
