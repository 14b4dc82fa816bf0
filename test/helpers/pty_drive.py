"""Run a command in a pseudo-terminal and answer its prompts, as a person at a terminal would.

usage: python3 pty_drive.py PROMPT_TEXT ANSWERS_JSON CMD...
Each time PROMPT_TEXT appears in new output, the next answer (e.g. "y\r") is typed; "\x03" is Ctrl-C.
With PTY_DRIVE_WHEN_FILE=PATH, the answers are typed instead as soon as that file exists (one per
0.5 s): a live view redraws all the time, so the output is never quiet enough to wait for.
An answer given as {"after": TEXT, "send": KEYS} is typed as soon as TEXT appears in the output that
came after the previous answer, quiet or not (a live view's "Stopping…", say).
With PTY_DRIVE_TRANSCRIPT=PATH, the output is also appended to that file as it comes (a test can
act on what the command has said so far while it still runs).
Prints {"exitCode": N, "output": "..."} as JSON on stdout.
"""
import fcntl, json, os, pty, select, struct, sys, termios, time

prompt = sys.argv[1].encode()
answers = json.loads(sys.argv[2])
cmd = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
# A terminal of a usual size (a new pty has 0 columns, which makes a live view wrap every character).
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
when_file = os.environ.get("PTY_DRIVE_WHEN_FILE")
transcript = os.environ.get("PTY_DRIVE_TRANSCRIPT")
last_sent = 0.0
out = b""
pending = b""
deadline = time.time() + 300
since_sent = b""
while time.time() < deadline:
    if answers and isinstance(answers[0], dict):
        if answers[0]["after"].encode() in since_sent:
            os.write(fd, answers.pop(0)["send"].encode())
            since_sent = b""
            pending = b""
    elif when_file and answers and os.path.exists(when_file) and time.time() - last_sent > 0.5:
        os.write(fd, answers.pop(0).encode())
        last_sent = time.time()
        since_sent = b""
    r, _, _ = select.select([fd], [], [], 0.1 if when_file else 0.3)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
        if transcript:
            with open(transcript, "ab") as t:
                t.write(data)
        pending += data
        since_sent += data
        continue
    # Quiet for a moment: if a prompt is waiting, answer it.
    if not when_file and prompt in pending and answers and not isinstance(answers[0], dict):
        pending = b""
        since_sent = b""
        os.write(fd, answers.pop(0).encode())
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"exitCode": code, "output": out.decode("utf-8", "replace")}))
