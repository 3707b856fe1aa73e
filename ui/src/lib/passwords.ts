// Client-side checks that give instant feedback. The node enforces the same
// rules; these only save a round trip.

export const MIN_PASSWORD_LENGTH = 8;

/** A password that unlocks the node scoring below this (0–4) gets a
 * warning: a warning, not a block; the minimum length is the only rule. */
export const WARN_BELOW_SCORE = 3;

/** What is said up front, before a password is typed. */
export const PASSWORD_GUIDANCE =
  `At least ${MIN_PASSWORD_LENGTH} characters. Four or more unrelated words, or a long mix of letters, ` +
  "digits and symbols, are hard to guess.";

/** The warning for a password that unlocks the node and scores `score`, if any. */
export function weakPasswordWarning(score: number): string | null {
  return score < WARN_BELOW_SCORE
    ? "This password would be easy to guess. Anyone who copies this device's files can try passwords " +
        "against them without limit: add words or characters, or go on if you accept the risk."
    : null;
}

export function newPasswordProblem(password: string, confirmation: string): string | null {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    return `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  if (password !== confirmation) {
    return "The two passwords do not match.";
  }
  return null;
}
