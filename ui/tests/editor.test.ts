// The secret editor: one name (a title, and a folder picked or typed),
// websites as a list with bare domains accepted, moving between folders,
// and a change of kind that keeps what kinds share.
import { describe, expect, it } from "vitest";
import { nameFromTitle, normaliseWebsite, pathForNew } from "../src/lib/stores/vaults.svelte";
import { allByTestId, byTestId, click, settle, text, type, unlockedApp } from "./harness";

async function newLogin() {
  const app = await unlockedApp();
  expect(await app.session.browser.createVault("Personal")).toBe(true);
  app.session.browser.newSecret("login");
  await settle();
  return app;
}

async function save(target: ParentNode) {
  click(target, "save-secret");
  await settle();
}

describe("names from titles", () => {
  const entry = (path: string) =>
    ({ path, title: path, kind: "login" as const, username: "", urls: [], favourite: false });

  it("keeps a title as it reads, leaving out only what a vault refuses in a name", () => {
    expect(nameFromTitle("  GitHub  ")).toBe("GitHub");
    expect(nameFromTitle("AC/DC fan club")).toBe("AC-DC fan club");
    expect(nameFromTitle("tab\there")).toBe("tabhere");
    expect(nameFromTitle("..")).toBe("");
    expect(nameFromTitle(".git")).toBe("");
    expect([...nameFromTitle("é".repeat(300))]).toHaveLength(100);
  });

  it("numbers a name already taken by a secret or a folder", () => {
    const entries = [entry("Bank"), entry("work/Bank"), entry("Mail/inbox")];
    expect(pathForNew("Bank", "", entries)).toBe("Bank 2");
    expect(pathForNew("Bank", " /work/ ", entries)).toBe("work/Bank 2");
    expect(pathForNew("Mail", "", entries)).toBe("Mail 2");
    expect(pathForNew("Bank", "home", entries)).toBe("home/Bank");
    expect(pathForNew("/", "", entries)).toBe("-");
    expect(pathForNew("  ", "", entries)).toBeNull();
  });

  it("takes a bare domain as https and leaves other links alone", () => {
    expect(normaliseWebsite(" github.com ")).toBe("https://github.com");
    expect(normaliseWebsite("github.com/login?next=/")).toBe("https://github.com/login?next=/");
    expect(normaliseWebsite("http://router.lan")).toBe("http://router.lan");
    expect(normaliseWebsite("")).toBe("");
  });
});

describe("the editor", () => {
  it("saves a login with only a title, a bare domain and a second website", async () => {
    const { backend, target } = await newLogin();
    expect(byTestId(target, "edit-path")).toBeNull();
    type(target, "edit-title", "GitHub");
    type(target, "edit-url", "github.com");
    click(target, "add-url");
    await settle();
    type(target, "edit-url", "gist.github.com", 1);
    await save(target);
    expect(byTestId(target, "browser-error")).toBeNull();
    expect(text(byTestId(target, "secret-title"))).toBe("GitHub");
    expect(text(byTestId(target, "secret-path"))).toBe("GitHub");
    expect(allByTestId(target, "website").map(text)).toEqual(["https://github.com", "https://gist.github.com"]);
    const stored = await backend.readSecret("Personal", "GitHub");
    expect(stored.item.type === "login" && stored.item.urls).toEqual(["https://github.com", "https://gist.github.com"]);
  });

  it("asks for a title, not a name", async () => {
    const { target } = await newLogin();
    await save(target);
    expect(text(byTestId(target, "browser-error"))).toBe("Give the secret a title.");
  });

  it("offers the vault's folders, puts a new secret in one, and moves a secret to another", async () => {
    const { backend, session, target } = await newLogin();
    await backend.saveSecret("Personal", { path: "work/VPN", title: "VPN", item: { type: "text", text: "x" }, fields: [], attachments: [] }, true);
    await session.browser.openVault("Personal");
    session.browser.newSecret("login");
    await settle();
    const options = [...target.querySelectorAll("#editor-folders option")].map((o) => (o as HTMLOptionElement).value);
    expect(options).toEqual(["work"]);

    type(target, "edit-title", "Bank");
    type(target, "edit-folder", "work");
    type(target, "edit-password", "pw-1");
    await save(target);
    expect(text(byTestId(target, "secret-path"))).toBe("work/Bank");

    click(target, "edit-secret");
    await settle();
    expect((byTestId(target, "edit-folder") as HTMLInputElement).value).toBe("work");
    type(target, "edit-title", "My bank");
    type(target, "edit-folder", "money/accounts");
    await save(target);
    expect(byTestId(target, "browser-error")).toBeNull();
    expect(text(byTestId(target, "secret-title"))).toBe("My bank");
    // The title changed, the name did not; the folder did.
    expect(text(byTestId(target, "secret-path"))).toBe("money/accounts/Bank");
    expect((await backend.listEntries("Personal")).map((e) => e.path).sort()).toEqual(["money/accounts/Bank", "work/VPN"]);
    const moved = await backend.readSecret("Personal", "money/accounts/Bank");
    expect(moved.title).toBe("My bank");
    expect(moved.item.type === "login" && moved.item.password).toBe("pw-1");

    // Its history follows it: the versions from before the move are there,
    // each saying where it was then, and open.
    click(target, "show-history");
    await settle();
    expect(allByTestId(target, "history-version").length).toBe(3);
    expect(allByTestId(target, "version-path").map(text)).toEqual(["then at work/Bank", "then at work/Bank"]);
    allByTestId(target, "view-version")[2].click();
    await settle();
    expect(text(byTestId(target, "secret-title"))).toBe("Bank");
  });

  it("keeps the title and notes when the kind changes", async () => {
    const { target } = await newLogin();
    type(target, "edit-title", "Wifi");
    const notes = target.querySelector<HTMLTextAreaElement>("textarea");
    if (!notes) throw new Error("no notes");
    notes.value = "router in the hall";
    notes.dispatchEvent(new Event("input", { bubbles: true }));
    type(target, "item-type", "secure_note");
    await settle();
    expect((byTestId(target, "edit-title") as HTMLInputElement).value).toBe("Wifi");
    expect((byTestId(target, "edit-text") as HTMLTextAreaElement).value).toBe("router in the hall");
  });
});

describe("password generator options", () => {
  it("makes passwords or passphrases as chosen, and remembers the choice on this device", async () => {
    localStorage.clear();
    const { session, target } = await newLogin();
    click(target, "generator-options-toggle");
    await settle();
    type(target, "gen-length", "12");
    click(target, "generate-password");
    await settle();
    expect((byTestId(target, "edit-password") as HTMLInputElement).value).toBe("x".repeat(12));

    click(target, "gen-mode-passphrase");
    await settle();
    type(target, "gen-words", "4");
    type(target, "gen-separator", ".");
    click(target, "generate-password");
    await settle();
    expect((byTestId(target, "edit-password") as HTMLInputElement).value).toBe("word.word.word.word");
    expect(JSON.parse(localStorage.getItem("polykey.generator") ?? "{}")).toMatchObject({
      mode: "passphrase",
      words: 4,
      separator: ".",
      length: 12,
    });

    // The next secret's generator starts where this one left off.
    session.browser.newSecret("login");
    await settle();
    click(target, "generate-password");
    await settle();
    expect((byTestId(target, "edit-password") as HTMLInputElement).value).toBe("word.word.word.word");
  });

  it("what storage holds is checked: odd or hostile values fall back to defaults", async () => {
    const { sanitize, DEFAULT_GENERATOR, loadGenerator } = await import("../src/lib/generator");
    expect(sanitize(null)).toEqual(DEFAULT_GENERATOR);
    expect(sanitize({ mode: "evil", length: 1e9, words: -3, separator: "\n", lowercase: "yes" })).toEqual({
      ...DEFAULT_GENERATOR,
      length: 128,
      words: 3,
    });
    expect(
      sanitize({ lowercase: false, uppercase: false, digits: false, symbols: false }).lowercase,
      "at least one kind of character",
    ).toBe(true);
    localStorage.setItem("polykey.generator", "{not json");
    expect(loadGenerator()).toEqual(DEFAULT_GENERATOR);
  });
});

describe("unsaved changes", () => {
  it("leaving an editor with changes asks first; an untouched one leaves at once", async () => {
    const { session, target } = await newLogin();
    const browser = session.browser;
    type(target, "edit-title", "Bank");
    type(target, "edit-password", "s3cret-pw");
    await save(target);
    expect(browser.pane.kind).toBe("view");

    // Opened and left untouched: Cancel leaves without a question.
    click(target, "edit-secret");
    await settle();
    click(target, "new-secret");
    await settle();
    expect(byTestId(target, "unsaved-dialog")).toBeNull();
    expect(browser.pane.kind).toBe("edit");

    // Typed into, then another secret asked for: the question, and
    // "Keep editing" keeps what was typed.
    type(target, "edit-title", "Mail");
    await settle();
    allByTestId(target, "secret-item")[0].click();
    await settle();
    expect(text(byTestId(target, "unsaved-dialog"))).toContain("has not been saved");
    click(target, "unsaved-dialog-cancel");
    await settle();
    expect(byTestId(target, "unsaved-dialog")).toBeNull();
    expect((byTestId(target, "edit-title") as HTMLInputElement).value).toBe("Mail");

    // Escape asks too; "Discard changes" goes where asked.
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    await settle();
    expect(byTestId(target, "unsaved-dialog")).not.toBeNull();
    click(target, "unsaved-dialog-confirm");
    await settle();
    expect(byTestId(target, "unsaved-dialog")).toBeNull();
    expect(browser.pane.kind).toBe("empty");
    expect(allByTestId(target, "secret-item").map(text)).toEqual(["LoginBank"]);
  });

  it("keeps an identity's custom fields and attached files, shown and saved from the view", async () => {
    const { backend, session, target } = await newLogin();
    type(target, "item-type", "identity");
    await settle();
    type(target, "edit-title", "Passport");
    type(target, "edit-full-name", "Ada Lovelace");
    type(target, "edit-id-number", "X1234567");
    click(target, "add-field");
    await settle();
    type(target, "field-name", "Recovery PIN");
    type(target, "field-kind", "hidden");
    type(target, "field-value", "8812");
    // A cancelled pick attaches nothing; a picked file is listed.
    click(target, "attach-file");
    await settle();
    expect(allByTestId(target, "attachment-name")).toHaveLength(0);
    backend.nextAttachment = { name: "scan.pdf", size: 70_000 };
    click(target, "attach-file");
    await settle();
    expect(allByTestId(target, "attachment-name").map(text)).toEqual(["scan.pdf"]);
    await save(target);

    const saved = await backend.readSecret("Personal", "Passport");
    expect(saved.item.type).toBe("identity");
    expect(saved.fields).toEqual([{ name: "Recovery PIN", kind: "hidden", value: "8812" }]);
    expect(saved.attachments.map((a) => a.name)).toEqual(["scan.pdf"]);
    // The view: the hidden field masked until revealed, copied by name.
    expect(text(byTestId(target, "field-custom-0"))).not.toContain("8812");
    click(target, "copy-custom-0");
    await settle();
    expect(backend.copied).toContain("8812");
    click(target, "save-attachment");
    await settle();
    expect(backend.savedAttachments).toEqual(["scan.pdf"]);
    expect(session.browser.notice).toContain("scan.pdf");

    // A field with no name is not saved silently.
    click(target, "edit-secret");
    await settle();
    click(target, "add-field");
    await settle();
    type(target, "field-value", "orphan", 1);
    await save(target);
    expect(session.browser.error).toContain("name");
    expect((await backend.readSecret("Personal", "Passport")).fields).toHaveLength(1);
  });
});
