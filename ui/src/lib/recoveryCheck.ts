// Confirming the recovery code: the user types back a few words by position,
// which proves they wrote the code down before it disappears for good.

export const WORDS_TO_CONFIRM = 3;

/** `count` distinct positions (0-based) out of `total`, in ascending order. */
export function pickPositions(
  total: number,
  count = WORDS_TO_CONFIRM,
  random: () => number = Math.random,
): number[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, total)) {
    chosen.add(Math.floor(random() * total));
  }
  return [...chosen].sort((a, b) => a - b);
}

function normalise(word: string): string {
  return word.trim().toLowerCase();
}

/** Whether every answer matches the word at its position. */
export function wordsMatch(words: string[], positions: number[], answers: string[]): boolean {
  return (
    positions.length === answers.length &&
    positions.every((position, i) => normalise(answers[i]) === words[position])
  );
}
