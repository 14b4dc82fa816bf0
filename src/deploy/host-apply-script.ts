/**
 * The fixed Python program that applies a host's share of a deploy in ONE remote command: it moves
 * the wheels just uploaded into the cache (after checking their sha256), applies each venv in turn
 * (APPLY_SCRIPT in a child process, under `sudo -n -u USER` for a venv owned by another user), and
 * runs the host's reload. Every remote command costs a login shell and a python start (≈130 ms of
 * CPU each on the test hosts, whose root .bashrc runs pyenv init): one per host instead of one per
 * venv plus one per upload batch plus one per reload is what keeps an upgrade near pip's own time.
 *
 * Protocol. stdin: the request as one JSON line, then control lines while it runs:
 *   "uploaded" — the SFTP uploads are complete (only awaited when the request says waitForUploads);
 *   "stop"     — start nothing new (Ctrl-C); the venv being applied finishes and is reported.
 * End of stdin means "stop" too: a client that went away must not have venvs started on its behalf.
 * stdout: one JSON object per line — {"push": …}, {"venv": i, …} after each venv, {"reload": …},
 * and last {"done": …}. stderr: `@vdeploy {"venv": i, "step", "phase"}` progress lines.
 * The runner stops after the first venv that did not deploy ("halted"), so the client can restore
 * that venv before anything else happens on the host, as it would have done one venv at a time.
 */
import { APPLY_SCRIPT, type ApplyScriptInput, type ApplyScriptOutput } from './apply-script.js';

export const HOST_APPLY_SCRIPT = String.raw`
import hashlib, json, os, select, signal, subprocess, sys, threading, time

APPLY_SCRIPT = ${JSON.stringify(APPLY_SCRIPT)}
buffered = b""
stdin_open = True
stop_asked = []

def read_line(wait):
    # The next control line, or None when none is there (without wait) or stdin has ended.
    global buffered, stdin_open
    while b"\n" not in buffered:
        if not stdin_open:
            return None
        if not wait and not select.select([0], [], [], 0)[0]:
            return None
        chunk = os.read(0, 65536)
        if not chunk:
            stdin_open = False
            return None
        buffered += chunk
    line, _, buffered = buffered.partition(b"\n")
    return line.decode("utf-8", "replace").strip()

def stopping():
    while True:
        line = read_line(False)
        if line is None:
            break
        if line == "stop":
            stop_asked.append("stop")
    return bool(stop_asked) or not stdin_open

def emit(obj, stream=None):
    # The client may be gone (its connection dropped): the work goes on and is recorded on the host.
    try:
        (stream or sys.stdout).write(json.dumps(obj) + "\n")
        (stream or sys.stdout).flush()
    except (OSError, ValueError):
        pass

def progress(obj):
    try:
        sys.stderr.write("@vdeploy " + json.dumps(obj) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass

# Ctrl-C reaching the host (or a hangup) must not cut a venv in half: treat it as "stop".
def on_signal(signum, frame):
    stop_asked.append(signum)

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on_signal)
signal.signal(signal.SIGPIPE, signal.SIG_IGN)

def tail(text, n=5):
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join(lines[-n:])

def finalize(uploads):
    # Each upload whose sha256 matches is renamed into place atomically; a bad one is deleted.
    bad, total = [], 0
    for u in uploads:
        h = hashlib.sha256()
        try:
            with open(u["tmp"], "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                    total += len(block)
        except OSError as e:
            bad.append({"final": u["final"], "got": str(e)})
            continue
        if h.hexdigest() == u["sha256"]:
            os.replace(u["tmp"], u["final"])
        else:
            bad.append({"final": u["final"], "got": h.hexdigest()})
            os.unlink(u["tmp"])
    return bad, total

def discard(uploads):
    for u in uploads:
        try:
            os.unlink(u["tmp"])
        except OSError:
            pass

def apply_venv(index, venv):
    argv = list(venv.get("sudo") or []) + [sys.executable, "-I", "-c", APPLY_SCRIPT]
    started = time.time()
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        return {"venv": index, "output": None, "exitCode": 127, "stderrTail": str(e), "ms": 0}
    out = []
    reader = threading.Thread(target=lambda: out.append(child.stdout.read()))
    reader.start()
    try:
        child.stdin.write(json.dumps(venv["input"]).encode("utf-8"))
        child.stdin.close()
    except OSError:
        pass
    other = []
    for raw in child.stderr:
        line = raw.decode("utf-8", "replace")
        if line.startswith("@vdeploy "):
            try:
                event = json.loads(line[len("@vdeploy "):])
                event["venv"] = index
                progress(event)
                continue
            except ValueError:
                pass
        other.append(line)
    code = child.wait()
    reader.join()
    try:
        output = json.loads((out[0] if out else b"").decode("utf-8"))
        if not isinstance(output, dict) or "outcome" not in output:
            output = None
    except ValueError:
        output = None
    result = {"venv": index, "output": output, "exitCode": code, "ms": int((time.time() - started) * 1000)}
    if output is None:
        result["stderrTail"] = tail("".join(other))
    return result

def main():
    line = read_line(True)
    if line is None:
        return {"started": 0, "stoppedBy": "stop"}
    request = json.loads(line)
    uploads = request.get("uploads") or []
    if uploads:
        if request.get("waitForUploads"):
            while True:
                line = read_line(True)
                if line == "uploaded":
                    break
                if line is None or line == "stop":
                    discard(uploads)
                    return {"started": 0, "stoppedBy": "push"}
        started = time.time()
        bad, total = finalize(uploads)
        emit({"push": {"bad": bad, "bytes": total, "ms": int((time.time() - started) * 1000)}})
        if bad:
            return {"started": 0, "stoppedBy": "push"}
    deployed, started_count, stopped_by = 0, 0, None
    for index, venv in enumerate(request.get("venvs") or []):
        if stopping():
            stopped_by = "stop"
            break
        started_count += 1
        progress({"venv": index, "phase": "venv-start"})
        result = apply_venv(index, venv)
        emit(result)
        if result["output"] is not None and result["output"].get("outcome") == "deployed":
            deployed += 1
        else:
            stopped_by = "halted"
            break
    reload = request.get("reload")
    if reload and stopped_by != "halted" and (deployed or request.get("reloadAnyway")):
        progress({"reload": "start"})
        started = time.time()
        try:
            p = subprocess.run(["sh", "-c", reload], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            code, text = p.returncode, (p.stderr or p.stdout).decode("utf-8", "replace")
        except OSError as e:
            code, text = 127, str(e)
        emit({"reload": {"ok": code == 0, "exitCode": code, "ms": int((time.time() - started) * 1000), "tail": tail(text)}})
    return {"started": started_count, "stoppedBy": stopped_by}

emit({"done": main()})
`;

/** The first line on the script's stdin. */
export interface HostApplyRequest {
  /** Uploaded under temporary names; moved into place after their sha256 is checked. */
  uploads: Array<{ tmp: string; final: string; sha256: string }>;
  /** Wait for an "uploaded" line before touching the uploads (they are still arriving over SFTP). */
  waitForUploads: boolean;
  /** `sudo`: the argv prefix that runs the apply as the venv's owner, or [] for the login user. */
  venvs: Array<{ sudo: string[]; input: ApplyScriptInput }>;
  /** The host's reload; runs once after the venvs when one of them (or an earlier batch's) deployed. */
  reload: string | null;
  /** An earlier batch on this host deployed a venv: reload even if this one deploys none. */
  reloadAnyway: boolean;
}

/** The lines the script prints on stdout. */
export type HostApplyLine =
  | { push: { bad: Array<{ final: string; got: string }>; bytes: number; ms: number } }
  | { venv: number; output: ApplyScriptOutput | null; exitCode: number | null; ms: number; stderrTail?: string }
  | { reload: { ok: boolean; exitCode: number | null; ms: number; tail: string } }
  | { done: { started: number; stoppedBy: 'stop' | 'halted' | 'push' | null } };

/** The progress lines on stderr (after `@vdeploy `). */
export type HostApplyProgress =
  | { venv: number; phase: 'venv-start' }
  | { venv: number; step: string; phase: 'start' | 'end' }
  | { reload: 'start' };
