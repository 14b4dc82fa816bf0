"""Run a command in a pseudo-terminal and answer its prompts, as a person at a terminal would.

usage: python3 pty_drive.py PROMPT_TEXT ANSWERS_JSON CMD...
Each time PROMPT_TEXT appears in new output, the next answer (e.g. "y\r") is typed; "\x03" is Ctrl-C.
Prints {"exitCode": N, "output": "..."} as JSON on stdout.
"""
import json, os, pty, select, sys, time

prompt = sys.argv[1].encode()
answers = json.loads(sys.argv[2])
cmd = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
pending = b""
deadline = time.time() + 300
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.3)
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
    if prompt in pending and answers:
        pending = b""
        os.write(fd, answers.pop(0).encode())
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"exitCode": code, "output": out.decode("utf-8", "replace")}))
