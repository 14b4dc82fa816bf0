/** "Did you mean …?": the known name closest to a mistyped one, for the hints of usage errors. */

/** Levenshtein distance (insert, delete, substitute; each costs 1), one row at a time. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * The candidate nearest to `word`, if it is near enough to be a typo: at most a third of the word's
 * length away (at least 1, at most 3 edits), so `deplyo` finds `deploy` but `x` finds nothing.
 * Ties go to the first candidate, which keeps the answer stable.
 */
export function nearestName(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (candidate !== word && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
