import { describe, expect, it } from "vitest";
import { flushSync, tick } from "svelte";
import { compareFields, matches, type Pane } from "../src/lib/stores/vaults.svelte";
import { allByTestId, byTestId, settle, text, type, unlockedApp } from "./harness";

async function unlocked() {
  const app = await unlockedApp();
  return { ...app, browser: app.session.browser };
}

describe("search", () => {
  const entry = (path: string, username = "", urls: string[] = []) =>
    ({ path, title: path.split("/").pop() ?? path, kind: "login" as const, username, urls, favourite: false });

  it("matches every word, in any case, in the title, path, user name or website", () => {
    expect(matches(entry("email/Work-Gmail"), "gmail work")).toBe(true);
    expect(matches(entry("email/work"), "bank")).toBe(false);
    expect(matches(entry("anything"), "  ")).toBe(true);
    expect(matches(entry("mail", "ada@example.org"), "ADA@")).toBe(true);
    expect(matches(entry("mail", "", ["https://login.bank.example"]), "bank.example")).toBe(true);
    expect(matches(entry("mail", "ada", ["https://x.example"]), "ada bank")).toBe(false);
  });
});

describe("vault browser", () => {
  it("creates a vault, saves a login, filters, shows history and restores", async () => {
    const { browser, target } = await unlocked();
    expect(await browser.createVault("Personal")).toBe(true);
    const login = (password: string) => ({
      path: "bank/login",
      title: "Bank",
      item: { type: "login" as const, username: "alice", password, urls: ["https://bank.example"], totp: null, notes: "" }, fields: [], attachments: [],
    });
    await browser.save(login("first"), true);
    await browser.save({ path: "email/work", title: "Work mail", item: { type: "text", text: "pw" }, fields: [], attachments: [] }, true);
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(2);

    browser.query = "bank";
    flushSync();
    expect(allByTestId(target, "secret-item").map((e) => e.textContent)).toEqual([expect.stringContaining("Bank")]);
    browser.query = "alice";
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(1);
    browser.query = "bank.example";
    flushSync();
    expect(allByTestId(target, "secret-item")).toHaveLength(1);
    browser.query = "bank";

    await browser.openSecret("bank/login");
    flushSync();
    expect(byTestId(target, "field-password")?.textContent?.trim()).toBe("••••••••••••");
    (byTestId(target, "reveal-password") as HTMLButtonElement).click();
    flushSync();
    expect(byTestId(target, "field-password")?.textContent?.trim()).toBe("first");

    await browser.save(login("second"), false);
    await browser.showHistory("bank/login");
    flushSync();
    expect(allByTestId(target, "history-version")).toHaveLength(2);
    if (browser.pane.kind !== "history") throw new Error("expected history");
    const first = browser.pane.versions[1].id;
    await browser.restore("bank/login", first);
    // Read the pane afresh: the restore replaced it.
    const restored = browser.pane as Pane;
    if (restored.kind !== "view") throw new Error("expected the restored secret");
    expect(restored.secret.item).toMatchObject({ password: "first" });
  });

  it("shows a title's hidden characters, keeping emoji whole", async () => {
    const { browser, target } = await unlocked();
    expect(await browser.createVault("Shared")).toBe(true);
    const note = (path: string, title: string) =>
      ({ path, title, item: { type: "text" as const, text: "x" }, fields: [], attachments: [] });
    // As another person writing to a shared vault could name them.
    await browser.save(note("scan\u202Efdp.exe", "scan\u202Efdp.exe"), true);
    await browser.save(note("bank", "Bank\u200B"), true);
    await browser.save(note("family", "Family \u{1F468}\u200D\u{1F469}\u200D\u{1F467}"), true);
    flushSync();
    const titles = allByTestId(target, "secret-item").map((e) => e.querySelector(".secret-name")?.textContent);
    // After the kind icon's text.
    expect(titles).toEqual([
      expect.stringMatching(/Bank\uFFFD$/),
      expect.stringMatching(/Family \u{1F468}\u200D\u{1F469}\u200D\u{1F467}$/u),
      expect.stringMatching(/scan\uFFFDfdp\.exe$/),
    ]);
    await browser.openSecret("scan\u202Efdp.exe");
    flushSync();
    expect(text(byTestId(target, "secret-title"))).toBe("scan\uFFFDfdp.exe");
    expect(text(byTestId(target, "secret-path"))).toBe("scan\uFFFDfdp.exe");
  });

  it("refuses a duplicate name and says why", async () => {
    const { browser, target } = await unlocked();
    await browser.createVault("V");
    await browser.save({ path: "a", title: "a", item: { type: "text", text: "1" }, fields: [], attachments: [] }, true);
    await browser.save({ path: "a", title: "a", item: { type: "text", text: "2" }, fields: [], attachments: [] }, true);
    flushSync();
    expect(byTestId(target, "browser-error")?.textContent).toContain("Something with that name is already there. Choose another title or folder.");
  });

  it("locking drops every decrypted secret from the UI", async () => {
    const { session, browser } = await unlocked();
    await browser.createVault("V");
    await browser.save({ path: "a", title: "a", item: { type: "text", text: "secret" }, fields: [], attachments: [] }, true);
    expect(browser.pane.kind).toBe("view");
    await session.lock();
    expect(browser.pane.kind).toBe("empty");
    expect(browser.secrets).toEqual([]);
    expect(browser.vaults).toEqual([]);
    expect(session.screen.kind).toBe("unlock");
  });
});

describe("history comparison", () => {
  it("shows a change to any of several custom fields of one name", () => {
    const version = (second: string) => ({
      path: "p", title: "p", item: { type: "text" as const, text: "" }, attachments: [],
      fields: [
        { name: "PIN", kind: "text" as const, value: "1" },
        { name: "PIN", kind: "text" as const, value: second },
        { name: "PIN (2)", kind: "text" as const, value: "x" },
      ],
    });
    const changed = compareFields(version("2222"), version("9999")).filter((c) => c.changed);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ older: "2222", newer: "9999" });
  });
});

describe("auto-lock", () => {
  it("reports activity at most once a second, and a self-lock clears the window", async () => {
    const { backend, session, browser } = await unlocked();
    session.activity(100_000);
    session.activity(100_500);
    session.activity(101_500);
    expect(backend.touches).toBe(2);

    await browser.createVault("V");
    await browser.save({ path: "a", title: "a", item: { type: "text", text: "secret" }, fields: [], attachments: [] }, true);
    backend.autoLock();
    await tick();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(browser.secrets).toEqual([]);
    expect(browser.pane.kind).toBe("empty");
    expect(session.screen.kind).toBe("unlock");
  });
});

describe("import wizard", () => {
  const submit = (target: ParentNode, id: string) => (byTestId(target, id) as HTMLButtonElement).click();
  /** Open the wizard on `file` and go on from its first step. */
  async function openOn(target: ParentNode, file: string) {
    submit(target, "import-open");
    await settle();
    type(target, "import-file", file);
    submit(target, "import-next");
    await settle();
  }
  /** Title, user name and password from the first three columns, by place. */
  function mapFirstThree(target: ParentNode) {
    type(target, "import-map-title", "#1");
    type(target, "import-map-username", "#2");
    type(target, "import-map-password", "#3");
  }

  it("asks which column holds what for an unknown CSV, previews, then imports into a folder", async () => {
    const { backend, browser, target } = await unlocked();
    expect(await browser.createVault("Personal")).toBe(true);
    backend.files.set("/tmp/other.csv", "Site,Login,Secret\nForum,me,hunter2\nShop,you,pw2");
    await settle();
    await openOn(target, "/tmp/other.csv");
    expect(byTestId(target, "import-mapping-why")?.textContent).toContain("not those of an export");
    const options = [...(byTestId(target, "import-map-title") as HTMLSelectElement).options].map((o) => o.text);
    expect(options).toEqual(["—", "Site", "Login", "Secret"]);
    mapFirstThree(target);
    submit(target, "import-map-next");
    await settle();
    expect(text(byTestId(target, "import-summary"))).toContain("2 items from a CSV export: 2 logins");
    expect(allByTestId(target, "import-row").map((r) => r.textContent)).toEqual([
      expect.stringContaining("Forum"), expect.stringContaining("Shop"),
    ]);
    type(target, "import-folder", "Imported");
    submit(target, "import-submit");
    await settle();
    expect(text(byTestId(target, "import-report"))).toContain("Imported 2 items");
    submit(target, "import-close");
    await settle();
    expect(byTestId(target, "import-dialog")).toBeNull();
    expect(allByTestId(target, "secret-item")).toHaveLength(2);
    const saved = await backend.readSecret("Personal", "Imported/Forum");
    expect(saved.item).toMatchObject({ type: "login", username: "me", password: "hunter2" });
  });

  it("forgets a mapping by place when another file is chosen", async () => {
    const { backend, browser, target } = await unlocked();
    expect(await browser.createVault("Personal")).toBe(true);
    backend.files.set("/tmp/a.csv", "Site,Login,Secret\nForum,me,hunter2");
    backend.files.set("/tmp/chrome.csv", "name,url,password,username\nShop,https://s.example,pw2,you");
    await settle();
    await openOn(target, "/tmp/a.csv");
    mapFirstThree(target);
    submit(target, "import-map-next");
    await settle();
    const button = (label: string) => [...target.querySelectorAll("button")].find((b) => b.textContent === label);
    button("Back")?.click();
    await settle();
    type(target, "import-file", "/tmp/chrome.csv");
    submit(target, "import-next");
    await settle();
    // Read as the export it is: the password from its password column.
    expect(text(byTestId(target, "import-summary"))).toContain("from a Chrome export");
    submit(target, "import-submit");
    await settle();
    const saved = await backend.readSecret("Personal", "Shop");
    expect(saved.item).toMatchObject({ type: "login", username: "you", password: "pw2" });
  });

  it("imports a CSV without a header row, its first row an entry, its columns by place", async () => {
    const { backend, browser, target } = await unlocked();
    expect(await browser.createVault("Personal")).toBe(true);
    backend.files.set("/tmp/bare.csv", "Forum,me,me\nShop,you,pw2\nBank,you,pw3");
    await settle();
    await openOn(target, "/tmp/bare.csv");
    const labels = () => [...(byTestId(target, "import-map-password") as HTMLSelectElement).options].map((o) => o.text);
    // Two columns of one name are two choices (keyed by name, they were an error).
    expect(labels()).toEqual(["—", "Forum", "me", "me"]);
    (byTestId(target, "import-header") as HTMLInputElement).click();
    await settle();
    expect(labels()).toEqual(["—", "Column 1 (Forum)", "Column 2 (me)", "Column 3 (me)"]);
    mapFirstThree(target);
    submit(target, "import-map-next");
    await settle();
    expect(text(byTestId(target, "import-summary"))).toContain("3 items from a CSV export");
    submit(target, "import-submit");
    await settle();
    expect(text(byTestId(target, "import-report"))).toContain("Imported 3 items");
    const saved = await backend.readSecret("Personal", "Forum");
    expect(saved.item).toMatchObject({ type: "login", username: "me", password: "me" });
  });

  it("has the node let go of what a preview read when it closes without importing", async () => {
    const { backend, browser, target } = await unlocked();
    expect(await browser.createVault("Personal")).toBe(true);
    backend.files.set("/tmp/chrome.csv", "name,url,username,password\nForum,https://f.example,me,hunter2");
    await settle();
    for (const close of ["Cancel", "Escape"]) {
      submit(target, "import-open");
      await settle();
      type(target, "import-file", "/tmp/chrome.csv");
      submit(target, "import-next");
      await settle();
      expect(text(byTestId(target, "import-summary"))).toContain("1 item");
      expect(backend.previewHeld).toBe(true);
      if (close === "Escape") {
        byTestId(target, "import-dialog")?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
      } else {
        const button = (label: string) => [...target.querySelectorAll("button")].find((b) => b.textContent === label);
        button("Back")?.click();
        await settle();
        button("Cancel")?.click();
      }
      await settle();
      expect(byTestId(target, "import-dialog")).toBeNull();
      expect(backend.previewHeld, close).toBe(false);
    }
  });
});

describe("search across vaults", () => {
  it("finds secrets of every vault, grouped by vault, each opening in its own vault", async () => {
    const { session, target } = await unlockedApp();
    const browser = session.browser;
    const login = (path: string, username: string) => ({
      path,
      title: path,
      item: { type: "login" as const, username, password: "pw", urls: [], totp: null, notes: "" }, fields: [], attachments: [],
    });
    for (const [vault, path, user] of [["Work", "vpn", "ada"], ["Home", "bank", "ada"], ["Family", "netflix", "bob"]]) {
      await browser.createVault(vault);
      await browser.save(login(path, user), true);
    }
    await browser.openVault("Work");
    await settle();
    type(target, "search", "ada");
    await settle();
    // (Each row's icon is named for its kind: "Login".)
    const rows = (id: string) =>
      allByTestId(target, id).map((row) => `${row.querySelector("svg")?.getAttribute("aria-label")}: ${text(row).replace(/^Login/, "")}`);
    expect(rows("secret-item")).toEqual(["Login: vpn ada"]);
    expect(allByTestId(target, "elsewhere-vault").map(text)).toEqual(["In Home"]);
    expect(rows("elsewhere-item")).toEqual(["Login: bank ada"]);

    (byTestId(target, "elsewhere-item") as HTMLButtonElement).click();
    await settle();
    expect(browser.vault).toBe("Home");
    expect(browser.pane.kind).toBe("view");
    expect(byTestId(target, "elsewhere")).toBeNull();

    type(target, "search", "nothing like it");
    await settle();
    expect(byTestId(target, "elsewhere")).toBeNull();
  });
});

describe("error messages", () => {
  it("are sentences that say what to do; technical text is kept out of sight", async () => {
    const { BackendError } = await import("../src/lib/backend");
    const io = new BackendError("io", "could not write /home/a/.local/share/polykey/db.redb: No space left on device (os error 28)");
    expect(io.message).toContain("Check that the disk has space");
    expect(io.message).not.toContain("os error");
    expect(io.detail).toContain("os error 28");
    expect(new BackendError("invalid_input", "the file has no name").message).toBe("The file has no name.");
    expect(new BackendError("peer_refused", "they said no.").message).toBe("They said no.");
    expect(new BackendError("internal", "panic at src/x.rs:3").message).not.toContain("src/");
  });
});
