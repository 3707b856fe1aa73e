// How ids and times read on screen: short NodeIds, "5 min ago", days left.

import type { EntryKindDto } from "./bindings";

/** A NodeId short enough for a sentence, still telling devices apart. */
export function shortId(id: string): string {
  return id.length > 18 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id;
}

const DAY_MS = 86_400_000;

/** When something happened, relative to `now` (ms since the epoch). */
/** What each kind of item is called, for its icon's label. */
export const KIND_ICONS: Record<EntryKindDto, { name: string }> = {
  login: { name: "Login" },
  secure_note: { name: "Secure note" },
  card: { name: "Card" },
  ssh_key: { name: "SSH key" },
  identity: { name: "Identity" },
  text: { name: "Text" },
  binary: { name: "File" },
};

export function timeAgo(ms: number, now = Date.now()): string {
  if (!ms) return "never";
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  const days = Math.floor(seconds / 86_400);
  if (days < 7) return days === 1 ? "yesterday" : `${days} days ago`;
  return new Date(ms).toLocaleDateString();
}

/** Whole days until `until` (ms since the epoch), never negative. */
export function daysLeft(until: number, now = Date.now()): number {
  return Math.max(0, Math.ceil((until - now) / DAY_MS));
}

/** "12 days left", "1 day left", "less than a day left". */
export function daysLeftText(until: number, now = Date.now()): string {
  const days = daysLeft(until, now);
  if (until - now < DAY_MS) return "less than a day left";
  return `${days} day${days === 1 ? "" : "s"} left`;
}

/**
 * `text` with every control or invisible character (as the node's
 * `hides_text` counts them: bidi overrides, zero-width marks) shown as
 * U+FFFD: a website written `https://` + U+202E + `@evil.net/moc.knab`
 * read as another site.
 */
export function reveal(text: string): string {
  return text.replace(
    /[\p{Cc}\u00AD\u034F\u061C\u115F\u1160\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\u{E0000}-\u{E0FFF}]/gu,
    "\uFFFD",
  );
}

/**
 * A name another device wrote (a secret's title, a vault's name) as
 * shown: each character that shows nothing yet changes how the text
 * around it reads (as the node's `shows_nothing` counts them: bidi marks
 * and overrides, zero-width spaces, tags) and each control character as
 * U+FFFD. Emoji's joiners and variation selectors stay. A title
 * `scan` + U+202E + `fdp.exe` read as "scanexe.pdf", and "Bank" with a
 * zero-width space passed for another secret of that name.
 */
export function shownName(text: string): string {
  return text.replace(
    /[\p{Cc}\u00AD\u034F\u061C\u115F\u1160\u180E\u200B\u200E\u200F\u2028-\u202E\u2060-\u206F\u3164\uFEFF\uFFA0\u{E0000}-\u{E00FF}\u{E01F0}-\u{E0FFF}]/gu,
    "\uFFFD",
  );
}
