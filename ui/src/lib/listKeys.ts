// Arrow keys in a list of buttons: Up and Down move the focus to the
// previous and next row's button, Home and End to the first and last.

export function arrowKeys(list: HTMLElement) {
  function onkeydown(event: KeyboardEvent) {
    if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
    const buttons = [...list.querySelectorAll<HTMLButtonElement>(":scope > li > button:not(:disabled)")];
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (at < 0) return;
    event.preventDefault();
    const next =
      event.key === "Home" ? 0
      : event.key === "End" ? buttons.length - 1
      : Math.min(buttons.length - 1, Math.max(0, at + (event.key === "ArrowDown" ? 1 : -1)));
    buttons[next]?.focus();
  }
  list.addEventListener("keydown", onkeydown);
  return {
    destroy() {
      list.removeEventListener("keydown", onkeydown);
    },
  };
}
