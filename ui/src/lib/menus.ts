// The web view's own context menu acts on the window itself ("Open Link"
// showed a website in Polykey's place; "Reload", "Back"): only text fields
// keep theirs (cut, copy, paste).

/** The web view's context menu only over a text field. */
export function keepMenusToTextFields(doc: Document): void {
  doc.addEventListener("contextmenu", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target?.closest("input, textarea, [contenteditable='true']")) event.preventDefault();
  });
}
