/**
 * The fixed Python script that applies one venv's plan on its host, run by the host apply script
 * (host-apply-script.ts) as `python3 -I -c APPLY_SCRIPT` (under `sudo -n -u USER` for a venv owned by
 * another user) with its arguments as JSON on stdin. It holds an exclusive flock on `<venv>/.vdeploy/lock` for the whole
 * apply (released by the kernel if the process dies: never a stale lock), then creates the venv,
 * installs the exact pinned set offline, checks the result, migrates, reloads and appends a history
 * line, stopping at the first failed step. It prints one JSON object (ApplyScriptOutput) on stdout, progress lines
 * (`@vdeploy {...}`) on stderr, and exits 0 even when a step failed (the output says which).
 */
export const APPLY_SCRIPT = String.raw`
import fcntl, json, os, signal, socket, subprocess, sys, time

args = json.load(sys.stdin)
venv = args["venv"]
meta = os.path.join(venv, ".vdeploy")
steps = []
interrupted = []

def progress(step, phase):
    sys.stderr.write("@vdeploy " + json.dumps({"step": step, "phase": phase}) + "\n")
    sys.stderr.flush()

def tail(text, n=20):
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join(lines[-n:])

def finish(outcome, failed=None, extra=None):
    out = {"outcome": outcome, "failedStep": failed, "steps": steps}
    out.update(extra or {})
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    sys.exit(0)

# A polite stop (SIGTERM/SIGINT/SIGHUP) lets the running step finish, then records "interrupted".
def on_signal(signum, frame):
    interrupted.append(signum)

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on_signal)

def run(name, argv, cwd=None, env=None, stdin=None):
    progress(name, "start")
    started = time.time()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        # Same process group as this script: stopping the deploy for good (kill -- -PGID) stops pip too.
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(stdin)
        code = proc.returncode
    except OSError as e:
        out, err, code = "", str(e), 127
    step = {"name": name, "ok": code == 0, "exitCode": code, "ms": int((time.time() - started) * 1000)}
    if code != 0:
        step["stderrTail"] = tail(err or out)
    steps.append(step)
    progress(name, "end")
    return step["ok"], out

def site_packages():
    found = []
    for lib in ("lib", "lib64"):
        base = os.path.join(venv, lib)
        if not os.path.isdir(base):
            continue
        for entry in sorted(os.listdir(base)):
            sp = os.path.join(base, entry, "site-packages")
            if entry.startswith("python") and os.path.isdir(sp) and os.path.realpath(sp) not in [os.path.realpath(f) for f in found]:
                found.append(sp)
    return found

def read_headers(path):
    name = version = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                break
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("Version:"):
                version = line[8:].strip()
    return name, version

def normalize(name):
    import re
    return re.sub(r"[-_.]+", "-", name).lower()

def installed():
    result = {}
    for sp in site_packages():
        for entry in os.listdir(sp):
            meta_file = None
            if entry.endswith(".dist-info"):
                meta_file = os.path.join(sp, entry, "METADATA")
            elif entry.endswith(".egg-info"):
                meta_file = os.path.join(sp, entry, "PKG-INFO") if os.path.isdir(os.path.join(sp, entry)) else os.path.join(sp, entry)
            if meta_file and os.path.isfile(meta_file):
                name, version = read_headers(meta_file)
                if name and version:
                    result[normalize(name)] = version
    return result

def append_history(record):
    try:
        with open(os.path.join(meta, "history.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        steps.append({"name": "record", "ok": False, "exitCode": None, "ms": 0, "stderrTail": str(e)})

# --- the lock ---
if os.path.lexists(venv) and not os.path.isdir(venv):
    finish("failed", "lock", {"error": "%s exists and is not a directory" % venv})
if args.get("create") and os.path.isdir(venv):
    leftovers = [e for e in os.listdir(venv) if e != ".vdeploy"]
    if leftovers and not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        finish("failed", "lock", {"error": "%s exists and is not a venv (it holds %s)" % (venv, ", ".join(sorted(leftovers)[:3]))})
try:
    os.makedirs(meta, exist_ok=True)
    lock = open(os.path.join(meta, "lock"), "a+")
except OSError as e:
    finish("failed", "lock", {"error": "cannot create %s: %s" % (meta, e)})
deadline = time.time() + float(args.get("lockWaitSeconds") or 0)
while True:
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except BlockingIOError:
        if time.time() >= deadline or interrupted:
            lock.seek(0)
            holder = lock.read().strip()
            try:
                holder = json.loads(holder)
            except ValueError:
                holder = {"raw": holder}
            finish("locked", "lock", {"heldBy": holder})
        time.sleep(0.2)
lock.seek(0)
lock.truncate()
lock.write(json.dumps(args["holder"]))
lock.flush()

history = dict(args["history"])
before = installed() if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) else {}
history["before"] = before

def stop(outcome, failed):
    history["outcome"] = outcome
    history["failedStep"] = failed
    history["steps"] = steps
    history["after"] = installed() if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) else {}
    history["finishedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    append_history(history)
    finish(outcome, failed, {"installed": history["after"], "before": history["before"]})

def check_interrupt():
    if interrupted:
        stop("interrupted", None)

# --- create ---
if args.get("create"):
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        pass  # created by a run that was interrupted after this step
    else:
        ok, _ = run("create", [args["create"]["python"], "-m", "venv", venv])
        if not ok:
            stop("failed", "create")
check_interrupt()

# --isolated ignores PIP_* variables and user config but still reads the global and site config
# files; PIP_CONFIG_FILE=/dev/null is pip's documented switch that skips them all.
pip_env = {"PIP_CONFIG_FILE": os.devnull}

mig = args.get("migrate")

def django(name, extra):
    return run(name, mig["argv"] + extra, cwd=mig.get("cwd"), env=mig.get("env"))

def applied_migrations():
    # What showmigrations --plan says is applied: {app: [names in the order applied]}.
    ok, out = django("showmigrations", ["showmigrations", "--plan"])
    if not ok:
        return None
    state = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[X]"):
            app, _, name = line[3:].strip().partition(".")
            state.setdefault(app, []).append(name)
    return state

# --- unmigrate: a rollback reverses migrations with the newer code, before installing the older ---
for target in args.get("unmigrate") or []:
    ok, _ = django("unmigrate", ["migrate", target["app"], target["to"], "--noinput"])
    if not ok:
        stop("failed", "unmigrate")
check_interrupt()
python = os.path.join(venv, "bin", "python")

# --- install ---
inst = args.get("install")
if inst:
    req_path = os.path.join(meta, "requirements.txt")
    report_path = os.path.join(meta, "pip-report.json")
    with open(req_path, "w", encoding="utf-8") as f:
        f.write(inst["requirements"])
    cache = inst["cacheDir"]
    # A cached wheel whose bytes went bad would fail pip's hash check on every run from now on:
    # check the ones this install needs, and delete a bad one so the next run pushes it again.
    import hashlib
    corrupt = []
    for w in inst.get("wheels", []):
        path = os.path.join(cache, w["filename"])
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            corrupt.append(w["filename"] + " (missing)")
            continue
        if h.hexdigest() != w["sha256"]:
            corrupt.append(w["filename"])
            os.unlink(path)
    if corrupt:
        steps.append({"name": "install", "ok": False, "exitCode": None, "ms": 0,
                      "stderrTail": "wheel cache entries were damaged or missing and have been removed: " + ", ".join(corrupt) + "; run the deploy again to push them anew"})
        stop("failed", "install")
    ok, _ = run("install", [python, "-m", "pip", "install", "--isolated", "--no-index", "--find-links", cache,
                            "--require-hashes", "--disable-pip-version-check", "--no-input",
                            "--report", report_path, "-r", req_path], env=pip_env)
    if not ok:
        stop("failed", "install")
    # Proof that pip took every wheel from the cache vdeploy filled, and nothing from anywhere else.
    try:
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
        prefix = "file://" + os.path.realpath(cache).rstrip("/") + "/"
        foreign = [i.get("download_info", {}).get("url", "?") for i in report.get("install", [])
                   if not i.get("download_info", {}).get("url", "").startswith(prefix)]
    except (OSError, ValueError) as e:
        foreign = ["(pip report unreadable: %s)" % e]
    if foreign:
        steps.append({"name": "verify", "ok": False, "exitCode": None, "ms": 0,
                      "stderrTail": "pip installed from outside the wheel cache: " + ", ".join(foreign[:5])})
        stop("failed", "verify")
check_interrupt()

# --- prune ---
if args.get("uninstall"):
    ok, _ = run("prune", [python, "-m", "pip", "uninstall", "--isolated", "-y", "--disable-pip-version-check"] + args["uninstall"], env=pip_env)
    if not ok:
        stop("failed", "prune")

# --- verify: the venv holds exactly the plan ---
now = installed()
expect = args["expect"]
wrong = ["%s %s (expected %s)" % (k, now.get(k, "missing"), v) for k, v in sorted(expect.items()) if now.get(k) != v]
wrong += ["%s %s (expected removed)" % (k, now[k]) for k in args.get("uninstallKeys", []) if k in now]
if wrong:
    steps.append({"name": "verify", "ok": False, "exitCode": None, "ms": 0,
                  "stderrTail": "installed set differs from the plan: " + "; ".join(wrong[:10])})
    stop("failed", "verify")
check_interrupt()

# --- migrate (recording the applied migrations before, so a rollback can reverse them) ---
if mig and mig.get("run"):
    state = applied_migrations()
    if state is None:
        stop("failed", "migrate")
    history["migrationsBefore"] = state
    ok, out = django("migrate", ["migrate", "--noinput"])
    after = {k: list(v) for k, v in state.items()}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Applying ") and "." in line:
            app, _, name = line[len("Applying "):].split("...")[0].strip().partition(".")
            if name not in after.setdefault(app, []):
                after[app].append(name)
    history["migrationsAfter"] = after
    if not ok:
        stop("failed", "migrate")
check_interrupt()

# --- reload ---
if args.get("reload"):
    ok, _ = run("reload", ["sh", "-c", args["reload"]], cwd=venv)
    if not ok:
        stop("failed", "reload")

# --- health check: a command, or a URL fetched from this host ---
hc = args.get("healthcheck")
if hc:
    import urllib.request, urllib.error
    progress("healthcheck", "start")
    started = time.time()
    attempts, last = 0, ""
    ok = False
    while attempts < hc["retries"] + 1 and not ok:
        if attempts:
            time.sleep(hc["interval"])
        attempts += 1
        if hc.get("command"):
            try:
                p = subprocess.run(["sh", "-c", hc["command"]], cwd=venv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, timeout=hc["timeout"])
                ok = p.returncode == 0
                last = "exit %d: %s" % (p.returncode, tail(p.stderr or p.stdout, 3))
            except subprocess.TimeoutExpired:
                last = "timed out after %ss" % hc["timeout"]
        if hc.get("url") and (ok or not hc.get("command")):
            try:
                with urllib.request.urlopen(hc["url"], timeout=hc["timeout"]) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except Exception as e:
                status = None
                last = "%s: %s" % (hc["url"], e)
            if status is not None:
                ok = status == hc["expectStatus"]
                last = "%s answered %s (expected %s)" % (hc["url"], status, hc["expectStatus"])
    step = {"name": "healthcheck", "ok": ok, "exitCode": 0 if ok else 1, "ms": int((time.time() - started) * 1000)}
    if not ok:
        step["stderrTail"] = "failed %d time%s: %s" % (attempts, "" if attempts == 1 else "s", last)
    steps.append(step)
    progress("healthcheck", "end")
    if not ok:
        stop("failed", "healthcheck")

stop("deployed", None)
`;

/** What APPLY_SCRIPT prints. */
export interface ApplyScriptOutput {
  outcome: 'deployed' | 'failed' | 'locked' | 'interrupted';
  /** key → version before the apply (absent when it stopped before the lock). */
  before?: Record<string, string>;
  failedStep: string | null;
  steps: Array<{ name: string; ok: boolean; exitCode: number | null; ms: number; stderrTail?: string }>;
  /** key → version after the apply (absent when it stopped before the lock). */
  installed?: Record<string, string>;
  heldBy?: Record<string, unknown>;
  error?: string;
}

/** What APPLY_SCRIPT reads on stdin. */
export interface ApplyScriptInput {
  venv: string;
  create: { python: string } | null;
  lockWaitSeconds: number;
  holder: { user: string; host: string; pid: number; startedAt: string };
  /** `wheels`: the cached wheels this install takes (checked against their sha256 first). */
  install: { requirements: string; cacheDir: string; wheels: Array<{ filename: string; sha256: string }> } | null;
  uninstall: string[];
  uninstallKeys: string[];
  /** key → version the venv must have afterwards. */
  expect: Record<string, string>;
  /** Django: `argv` runs manage.py/django-admin; `run`: migrate this time (else only unmigrate may use it). */
  migrate: { argv: string[]; cwd?: string; env?: Record<string, string>; run: boolean } | null;
  /** Migrate each app back to `to` before installing (rollback --unapply-migrations). */
  unmigrate: Array<{ app: string; to: string }>;
  reload: string | null;
  healthcheck: { command?: string; url?: string; expectStatus: number; timeout: number; retries: number; interval: number } | null;
  /** The history record, completed by the script with before/after/outcome/steps. */
  history: Record<string, unknown>;
}
