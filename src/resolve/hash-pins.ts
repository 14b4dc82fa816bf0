/**
 * `--hash` pins on requirement lines, honoured as pip honours them: the wheel installed for that
 * requirement must match one of the line's hashes (several on a line are alternatives), otherwise
 * it is refused. The digests compared are the release line's (what deploy pushes and the host
 * checks), so a pin catches a wheel that is not the one the user vetted.
 *
 * A pin also steers the choice, as pip prefers candidates with an allowed hash: when some released
 * wheel that fits the line and the interpreter matches, only matching wheels are candidates (so a
 * pin on 1.0 keeps 1.1 out, and picks the pinned one of several wheels of a version). When none
 * matches, the resolver chooses as usual and the chosen wheel is refused, naming the line.
 */
import type { HashAlgorithm, RequirementHash, RequirementLine } from '../requirements/requirements-file.js';
import { containsVersion, parseSpecifier } from '../requirements/specifier.js';
import type { ReleasedWheel } from '../wheels/repository.js';
import { rankWheelTags } from '../wheels/wheel-filename.js';
import type { ResolvedPackage, ResolveInput } from './resolve-venv.js';

type Digests = Pick<ResolveInput, 'sha256Of' | 'digestOf'>;

/** The released wheels the resolver may choose from, with the hash-pinned projects narrowed to matching wheels. */
export async function steerByHashes(lines: readonly RequirementLine[], input: ResolveInput): Promise<readonly ReleasedWheel[]> {
  let released = input.released;
  for (const line of lines) {
    if (!line.hashes) continue;
    const { key, specifier } = line.requirement;
    const spec = parseSpecifier(specifier);
    const clauses = spec.ok ? spec.clauses : [];
    const matching = new Set<ReleasedWheel>();
    for (const wheel of released) {
      if (wheel.normalizedName !== key || !containsVersion(clauses, wheel.version, true)) continue;
      if (rankWheelTags(wheel.wheel, input.interpreter.supportedTags) === undefined) continue;
      if (await matchesOne(wheel, line.hashes, input)) matching.add(wheel);
    }
    if (matching.size > 0) released = released.filter((w) => w.normalizedName !== key || matching.has(w));
  }
  return released;
}

/** The resolve error for the first hash-pinned requirement whose chosen wheel matches none of its hashes. */
export async function hashMismatch(
  lines: readonly RequirementLine[],
  packages: readonly ResolvedPackage[],
  input: ResolveInput,
): Promise<{ message: string; hint: string } | undefined> {
  for (const line of lines) {
    if (!line.hashes) continue;
    const pkg = packages.find((p) => p.key === line.requirement.key);
    const wheel = pkg && input.released.find((w) => w.filename === pkg.filename);
    if (!pkg || !wheel || (await matchesOne(wheel, line.hashes, input))) continue;
    const pinned = line.hashes.map((h) => `${h.algorithm}:${h.digest.slice(0, 12)}…`).join(' or ');
    return {
      message:
        `${line.file}:${line.line}: the released wheel ${pkg.filename} does not match the --hash pinned there ` +
        `(pinned ${pinned}; the wheel's sha256 is ${pkg.sha256.slice(0, 12)}…, release_log line ${wheel.lineNumber}); pip would refuse to install it`,
      hint:
        `Check where ${pkg.filename} came from. If it is the wheel you meant, pin --hash=sha256:${pkg.sha256}; ` +
        'if not, release the wheel you pinned with `vdeploy add-wheel`.',
    };
  }
  return undefined;
}

async function matchesOne(wheel: ReleasedWheel, hashes: readonly RequirementHash[], digests: Digests): Promise<boolean> {
  const computed = new Map<HashAlgorithm, string | undefined>();
  for (const { algorithm, digest } of hashes) {
    if (!computed.has(algorithm)) computed.set(algorithm, await digestOf(wheel, algorithm, digests));
    if (computed.get(algorithm) === digest) return true;
  }
  return false;
}

function digestOf(wheel: ReleasedWheel, algorithm: HashAlgorithm, digests: Digests): Promise<string | undefined> {
  if (algorithm === 'sha256') return wheel.sha256 !== undefined ? Promise.resolve(wheel.sha256) : digests.sha256Of(wheel);
  return digests.digestOf ? digests.digestOf(wheel, algorithm) : Promise.resolve(undefined);
}
