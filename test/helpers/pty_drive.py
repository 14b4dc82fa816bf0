"""Run a command in a pseudo-terminal and answer its prompts, as a person at a terminal would.

usage: python3 pty_drive.py PROMPT_TEXT ANSWERS_JSON CMD...
Each time PROMPT_TEXT appears in new output, the next answer (e.g. "y\r") is typed; "\x03" is Ctrl-C.
With PTY_DRIVE_WHEN_FILE=PATH, the answers are typed instead as soon as that file exists (one per
0.5 s): a live view redraws all the time, so the output is never quiet enough to wait for.
Prints {"exitCode": N, "output": "..."} as JSON on stdout.
"""
import json, os, pty, select, sys, time

prompt = sys.argv[1].encode()
answers = json.loads(sys.argv[2])
cmd = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
when_file = os.environ.get("PTY_DRIVE_WHEN_FILE")
last_sent = 0.0
out = b""
pending = b""
deadline = time.time() + 300
while time.time() < deadline:
    if when_file and answers and os.path.exists(when_file) and time.time() - last_sent > 0.5:
        os.write(fd, answers.pop(0).encode())
        last_sent = time.time()
    r, _, _ = select.select([fd], [], [], 0.1 if when_file else 0.3)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
        pending += data
        continue
    # Quiet for a moment: if a prompt is waiting, answer it.
    if not when_file and prompt in pending and answers:
        pending = b""
        os.write(fd, answers.pop(0).encode())
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"exitCode": code, "output": out.decode("utf-8", "replace")}))
