// Client-side checks that give instant feedback. The node enforces the same
// rules; these only save a round trip.

export const MIN_PASSWORD_LENGTH = 8;

export function newPasswordProblem(password: string, confirmation: string): string | null {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    return `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  if (password !== confirmation) {
    return "The two passwords do not match.";
  }
  return null;
}
