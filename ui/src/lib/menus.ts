// The web view's own context menu acts on the window itself ("Open Link"
// showed a website in Polykey's place; "Reload", "Back"): only text fields
// and selected text keep theirs (cut, copy, paste).

const TEXT_FIELDS =
  "textarea, [contenteditable='true'], input:not([type]), input[type=text], input[type=password], " +
  "input[type=search], input[type=email], input[type=url], input[type=number], input[type=tel]";

/** The web view's context menu only over a text field or selected text. */
export function keepMenusToTextFields(doc: Document): void {
  doc.addEventListener("contextmenu", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target?.closest(TEXT_FIELDS)) return;
    if ((doc.getSelection()?.toString() ?? "") !== "") return;
    event.preventDefault();
  });
}
