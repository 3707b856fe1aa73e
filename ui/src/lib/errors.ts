// What a person reads when something fails: a sentence saying what
// happened and what to do. The node's own words are kept where they were
// written for people (most are); codes whose text is technical (a file
// system's or the storage engine's) get a plain sentence here, and the
// technical text stays in the log (the app's standard error).
import type { ErrorCode } from "./bindings";

const PLAIN: Partial<Record<ErrorCode, string>> = {
  locked: "Polykey is locked. Unlock it to go on.",
  wrong_password: "Wrong password. Try again.",
  recovery_code_mismatch: "This recovery code belongs to a different node. Check it is the one for this device's Polykey.",
  in_use: "This node is open in another Polykey window or process. Close that one first.",
  secret_not_found:
    "That secret is not there any more: it may have been moved or deleted, perhaps on another device. Look for it in the list or in Recently deleted.",
  secret_exists: "Something with that name is already there. Choose another title or folder.",
  unknown_vault:
    "That vault is not here any more: it may have been renamed or deleted, perhaps on another device. Pick it again from the list.",
  vault_exists: "A vault with that name already exists. Choose another name.",
  unknown_version: "That version is not in this vault's history (it may not have arrived from your other devices yet).",
  directory_not_empty: "That folder still holds secrets. Move or delete them first.",
  io: "Polykey could not read or write a file on this computer. Check that the disk has space and that you may write there, then try again. (The details are in the log.)",
  internal: "Something went wrong inside Polykey. Try again; if it keeps happening, restart Polykey. (The details are in the log.)",
};

/** `text` as a sentence: a capital first letter and a full stop. */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return "Something went wrong. Try again.";
  const first = trimmed[0].toLocaleUpperCase() + trimmed.slice(1);
  return /[.!?)”"]$/.test(first) ? first : `${first}.`;
}

/** What to show for an error with `code` and the node's `message`. */
export function friendly(code: ErrorCode, message: string): string {
  return PLAIN[code] ?? sentence(message);
}
