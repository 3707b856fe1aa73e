// The quick-access shortcut as recorded from a key press: Tauri's
// accelerator text ("Alt+Shift+K", "CommandOrControl+Shift+Space").

const MODIFIER_KEYS = new Set(["Control", "Alt", "Shift", "Meta", "AltGraph", "OS", "Super", "Hyper"]);

const NAMED: Record<string, string> = {
  Space: "Space",
  Enter: "Enter",
  Tab: "Tab",
  Backspace: "Backspace",
  Delete: "Delete",
  Insert: "Insert",
  Home: "Home",
  End: "End",
  PageUp: "PageUp",
  PageDown: "PageDown",
  ArrowUp: "Up",
  ArrowDown: "Down",
  ArrowLeft: "Left",
  ArrowRight: "Right",
  Minus: "-",
  Equal: "=",
  Comma: ",",
  Period: ".",
  Slash: "/",
  Backslash: "\\",
  Semicolon: ";",
  Quote: "'",
  BracketLeft: "[",
  BracketRight: "]",
  Backquote: "`",
};

/** What a key press records: an accelerator, `null` while only modifiers
 * are down, or a reason the combination cannot be a global shortcut. */
export function recordShortcut(
  event: Pick<KeyboardEvent, "key" | "code" | "ctrlKey" | "altKey" | "shiftKey" | "metaKey">,
  mac = false,
): { shortcut: string } | { problem: string } | null {
  if (MODIFIER_KEYS.has(event.key)) return null;
  let key: string | undefined;
  if (/^Key[A-Z]$/.test(event.code)) key = event.code.slice(3);
  else if (/^Digit[0-9]$/.test(event.code)) key = event.code.slice(5);
  else if (/^F([1-9]|1[0-9]|2[0-4])$/.test(event.code)) key = event.code;
  else key = NAMED[event.code];
  if (!key) return { problem: "That key cannot be part of a shortcut; try a letter, a digit or Space." };
  const parts: string[] = [];
  if (event.ctrlKey) parts.push(mac ? "Control" : "CommandOrControl");
  if (event.metaKey) parts.push(mac ? "CommandOrControl" : "Super");
  if (event.altKey) parts.push("Alt");
  if (event.shiftKey) parts.push("Shift");
  const functionKey = /^F\d+$/.test(key);
  if (!event.ctrlKey && !event.metaKey && !event.altKey && !functionKey) {
    return { problem: "Hold Ctrl, Alt or Super (and Shift if you like) with the key: a shortcut for anywhere needs one." };
  }
  return { shortcut: [...parts, key].join("+") };
}
