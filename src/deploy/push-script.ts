/**
 * Run on a host after its wheels were uploaded under temporary names (`python3 -I -c`, JSON on stdin:
 * `[{tmp, final, sha256}]`): each upload whose sha256 matches is renamed into place atomically, a bad
 * one is deleted. Prints `{"bad": [{final, got}], "bytes": N}`.
 */
export const FINALIZE_UPLOADS_SCRIPT = String.raw`
import hashlib, json, os, sys
bad, total = [], 0
for u in json.load(sys.stdin):
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
print(json.dumps({"bad": bad, "bytes": total}))
`;
