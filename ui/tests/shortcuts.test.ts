// The keyboard shortcuts of the main window.
import { describe, expect, it } from "vitest";
import { allByTestId, byTestId, settle, unlockedApp } from "./harness";

function press(key: string, modifiers: KeyboardEventInit = { ctrlKey: true }) {
  window.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...modifiers }));
}

async function withLogin() {
  const app = await unlockedApp();
  const { browser } = app.session;
  expect(await browser.createVault("Personal")).toBe(true);
  await browser.save(
    { path: "", title: "Bank", item: { type: "login", username: "ada", password: "pw-bank", urls: [], totp: null, notes: "" }, fields: [], attachments: [] },
    true,
  );
  await settle();
  return app;
}

describe("keyboard shortcuts", () => {
  it("Ctrl+N opens a new secret, Esc leaves it, Ctrl+F goes to search", async () => {
    const { target } = await withLogin();
    press("n");
    await settle();
    expect(byTestId(target, "edit-title")).not.toBeNull();
    press("Escape", {});
    await settle();
    expect(byTestId(target, "edit-title")).toBeNull();
    press("f");
    await settle();
    expect(document.activeElement).toBe(byTestId(target, "search"));
  });

  it("Ctrl+C copies the open login's password, but not while text is selected or typed", async () => {
    const { backend, session, target } = await withLogin();
    await session.browser.openSecret("Bank");
    await settle();
    const search = byTestId(target, "search") as HTMLInputElement;
    search.focus();
    press("c");
    await settle();
    expect(backend.copied).toEqual([]);
    search.blur();
    press("c");
    await settle();
    expect(backend.copied).toEqual(["pw-bank"]);
  });

  it("Ctrl+L locks", async () => {
    const { session } = await withLogin();
    press("l");
    await settle();
    expect(session.screen.kind).toBe("unlock");
  });
});

describe("arrow keys in lists", () => {
  it("Up, Down, Home and End move through the vault list; the open vault is marked current", async () => {
    const { session, target } = await unlockedApp();
    for (const name of ["Alpha", "Beta", "Gamma"]) await session.browser.createVault(name);
    await settle();
    const items = allByTestId(target, "vault-item");
    expect(items.map((b) => b.getAttribute("aria-current"))).toEqual([null, null, "true"]);
    items[0].focus();
    const press = (key: string) =>
      document.activeElement?.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
    press("ArrowDown");
    expect(document.activeElement).toBe(items[1]);
    press("End");
    expect(document.activeElement).toBe(items[2]);
    press("ArrowDown");
    expect(document.activeElement).toBe(items[2]);
    press("Home");
    press("ArrowUp");
    expect(document.activeElement).toBe(items[0]);
  });
});
