// The vault browser's state: which vault and secret are open, the search,
// and the editor. Components render it and call its methods.
import { type Backend, toBackendError } from "../backend";
import { type GeneratorOptions, loadGenerator, rulesOf, sanitize, saveGenerator } from "../generator";
import type {
  AttachmentDto,
  EntryDto,
  ImportPreviewDto,
  ImportReportDto,
  ImportRequestDto,
  HealthItemDto,
  ItemDto,
  QuickItemDto,
  SecretDto,
  TotpDto,
  VaultDto,
  VersionDto,
} from "../bindings";

export type Pane =
  | { kind: "empty" }
  | { kind: "view"; secret: SecretDto; version: string | null }
  | { kind: "edit"; draft: SecretDto; isNew: boolean }
  | { kind: "history"; path: string; versions: VersionDto[]; compare: Comparison | null };

/** Two versions of one secret side by side. */
export interface Comparison {
  older: { version: VersionDto; secret: SecretDto | null };
  newer: { version: VersionDto; secret: SecretDto | null };
}

/** One row of a comparison: a field, its two values, whether it changed. */
export interface FieldChange {
  label: string;
  older: string;
  newer: string;
  changed: boolean;
  sensitive: boolean;
}

const FIELD_LABELS: Record<string, string> = {
  title: "Title", username: "Username", password: "Password", urls: "Websites", totp: "One-time code", notes: "Notes",
  text: "Text", cardholder: "Cardholder", number: "Number", expiry: "Expiry", cvv: "Security code",
  privateKey: "Private key", publicKey: "Public key", passphrase: "Passphrase", size: "Size",
  fullName: "Full name", email: "Email", phone: "Phone", address: "Address", birthday: "Date of birth",
  company: "Company", idNumber: "ID number", attachments: "Attachments",
};

const SENSITIVE = new Set(["password", "cvv", "number", "privateKey", "passphrase", "text", "totp", "idNumber"]);

const hiddenCustom = new Set<string>();

function fieldsOf(secret: SecretDto | null): Map<string, string> {
  const fields = new Map<string, string>();
  if (!secret) return fields;
  fields.set("title", secret.title);
  for (const [key, value] of Object.entries(secret.item)) {
    if (key === "type") continue;
    fields.set(key, Array.isArray(value) ? value.join("\n") : value === null ? "" : String(value));
  }
  // Custom fields by their names (a hidden one is compared as sensitive);
  // a second of one name as "name (2)", or the next number free: one
  // drawn over the other hid its change.
  for (const field of secret.fields ?? []) {
    let key = `custom:${field.name}`;
    for (let n = 2; fields.has(key); n++) key = `custom:${field.name} (${n})`;
    fields.set(key, field.value);
    if (field.kind === "hidden") hiddenCustom.add(key);
  }
  if (secret.attachments?.length) fields.set("attachments", secret.attachments.map((a) => a.name).join("\n"));
  return fields;
}

/** Field-by-field differences between two versions of a secret. */
export function compareFields(older: SecretDto | null, newer: SecretDto | null): FieldChange[] {
  const a = fieldsOf(older);
  const b = fieldsOf(newer);
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  return keys.map((key) => ({
    label: FIELD_LABELS[key] ?? (key.startsWith("custom:") ? key.slice("custom:".length) : key),
    older: a.get(key) ?? "",
    newer: b.get(key) ?? "",
    changed: (a.get(key) ?? "") !== (b.get(key) ?? ""),
    sensitive: SENSITIVE.has(key) || hiddenCustom.has(key),
  }));
}

export type Filter = "all" | "favourites";

/** At most this many rows are drawn; the search narrows the rest. */
export const LIST_LIMIT = 200;

export type ItemType = ItemDto["type"];

export function blankItem(type: ItemType): ItemDto {
  switch (type) {
    case "login":
      return { type, username: "", password: "", urls: [""], totp: null, notes: "" };
    case "secure_note":
      return { type, text: "" };
    case "card":
      return { type, cardholder: "", number: "", expiry: "", cvv: "", notes: "" };
    case "ssh_key":
      return { type, privateKey: "", publicKey: "", passphrase: "", notes: "" };
    case "identity":
      return { type, fullName: "", email: "", phone: "", address: "", birthday: "", company: "", idNumber: "", notes: "" };
    case "text":
      return { type, text: "" };
    case "binary":
      return { type, size: 0 };
  }
}

/** The folder a path is in ("" at the top level). */
export function folderOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

/** A folder as typed: no empty parts, no slash at either end. */
export function normaliseFolder(folder: string): string {
  return folder
    .split("/")
    .map((part) => part.trim())
    .filter(Boolean)
    .join("/");
}

/** `name` in `folder` (top level when the folder is empty). */
export function inFolder(folder: string, name: string): string {
  const f = normaliseFolder(folder);
  return f ? `${f}/${name}` : name;
}

/** Every folder a vault's secrets are in, parents too, sorted. */
export function foldersOf(entries: EntryDto[]): string[] {
  const folders = new Set<string>();
  for (const { path } of entries) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
  }
  return [...folders].sort((a, b) => a.localeCompare(b));
}

/** A secret's name in the vault, made from its title: what the vault
 * refuses in a name (a slash, a backslash, control characters, "." and
 * "..", ".git") left out, at most 100 characters. Empty if nothing is left. */
export function nameFromTitle(title: string): string {
  const cleaned = [...title]
    .filter((c) => !/[\u0000-\u001f\u007f-\u009f]/.test(c))
    .join("")
    .replace(/[/\\]+/g, "-")
    .trim();
  const name = [...cleaned].slice(0, 100).join("").trim();
  return /^\.{1,2}$/.test(name) || name.toLowerCase() === ".git" ? "" : name;
}

/** Where a new secret titled `title` goes in `folder`: its name from the
 * title, numbered ("Bank 2") when a secret or folder there has it. */
export function pathForNew(title: string, folder: string, entries: EntryDto[]): string | null {
  const name = nameFromTitle(title);
  return name ? freePath(name, folder, entries) : null;
}

/** `name` in `folder`, numbered ("Bank 2") when a secret or folder of
 * `entries` has it. */
function freePath(name: string, folder: string, entries: EntryDto[]): string {
  const taken = new Set([...entries.map((e) => e.path), ...foldersOf(entries)]);
  let path = inFolder(folder, name);
  for (let n = 2; taken.has(path); n++) path = inFolder(folder, `${name} ${n}`);
  return path;
}

/** A website as typed: trimmed, and a bare domain (`github.com`) taken as
 * `https://github.com`. */
export function normaliseWebsite(url: string): string {
  const trimmed = url.trim();
  if (!trimmed || /^[a-z][a-z0-9+.-]*:/i.test(trimmed)) return trimmed;
  return `https://${trimmed.replace(/^\/+/, "")}`;
}

/** Case-insensitive match of every word of `query` against what a person
 * searches a secret by: title, path, user name, websites. */
export function matches(entry: EntryDto, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const haystack = `${entry.title}\n${entry.path}\n${entry.username}\n${entry.urls.join("\n")}`.toLowerCase();
  return words.every((word) => haystack.includes(word));
}

export class VaultBrowser {
  vaults = $state<VaultDto[]>([]);
  vault = $state<string | null>(null);
  secrets = $state.raw<EntryDto[]>([]);
  query = $state("");
  /** The password health report, once asked for. */
  health = $state.raw<HealthItemDto[] | null>(null);
  /** Logins found in known breaches by the last breach check (null: not
   * checked since the app started). */
  breached = $state.raw<HealthItemDto[] | null>(null);
  /** The open editor holds changes not saved (it says so as they come). */
  editorDirty = false;
  /** Where the person asked to go while the editor held changes: asked
   * first whether to discard them. */
  leaving = $state<(() => unknown) | null>(null);
  /** The password generator's options, as last used on this device. */
  generator = $state<GeneratorOptions>(loadGenerator());
  /** What the query finds in the other vaults, by vault (in list order). */
  elsewhere = $state.raw<{ vault: string; items: QuickItemDto[] }[]>([]);
  filter = $state<Filter>("all");
  pane = $state<Pane>({ kind: "empty" });
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  busy = $state(false);

  readonly visible = $derived(
    this.secrets.filter((entry) => (this.filter === "all" || entry.favourite) && matches(entry, this.query)),
  );
  /** The rows drawn: the first LIST_LIMIT matches. */
  readonly shown = $derived(this.visible.length > LIST_LIMIT ? this.visible.slice(0, LIST_LIMIT) : this.visible);

  constructor(private readonly backend: Backend) {}

  private async attempt<T>(work: () => Promise<T>): Promise<T | undefined> {
    this.busy = true;
    this.error = null;
    try {
      return await work();
    } catch (raw) {
      this.error = toBackendError(raw).message;
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  async load() {
    await this.attempt(async () => {
      this.vaults = await this.backend.listVaults();
      const keep = this.vaults.find((v) => v.name === this.vault);
      await this.openVault(keep?.name ?? this.vaults[0]?.name ?? null);
    });
  }

  /** Another device changed something: reload the lists, keep what is open
   * (the query, the pane) unless its vault is gone. */
  async refresh() {
    try {
      const vaults = await this.backend.listVaults();
      this.vaults = vaults;
      if (this.vault && vaults.some((v) => v.name === this.vault)) {
        this.secrets = await this.backend.listEntries(this.vault);
      } else {
        await this.openVault(vaults[0]?.name ?? null);
      }
    } catch {
      // Locked meanwhile: the lock handler clears the browser.
    }
  }

  /** Search every other vault for the query too (the open one is listed
   * above); a later query's answer replaces an earlier one's. */
  async searchElsewhere() {
    const query = this.query.trim();
    if (!query) {
      this.elsewhere = [];
      return;
    }
    let found: QuickItemDto[];
    try {
      found = await this.backend.quickSearch(query);
    } catch {
      return;
    }
    if (this.query.trim() !== query) return;
    const groups = new Map<string, QuickItemDto[]>();
    for (const item of found) {
      if (item.vault === this.vault) continue;
      groups.set(item.vault, [...(groups.get(item.vault) ?? []), item]);
    }
    this.elsewhere = this.vaults
      .filter((v) => groups.has(v.name))
      .map((v) => ({ vault: v.name, items: groups.get(v.name) ?? [] }));
  }

  /** Open a secret another vault's search result names. */
  async openElsewhere(vault: string, path: string) {
    await this.openVault(vault);
    await this.openSecret(path);
  }

  async openVault(name: string | null) {
    this.vault = name;
    this.query = "";
    this.elsewhere = [];
    this.pane = { kind: "empty" };
    this.secrets = name ? await this.backend.listEntries(name) : [];
  }

  /** What importing an export would bring in (nothing written). */
  importPreview(request: ImportRequestDto): Promise<ImportPreviewDto> {
    return this.backend.importPreview(request, this.vault ?? "");
  }

  /** Let go of what the last preview read (the wizard closed). */
  importForget(): Promise<void> {
    return this.backend.importForget();
  }

  /** Import into `folder` of the open vault (one version), then show it. */
  async importItems(request: ImportRequestDto, folder: string): Promise<ImportReportDto> {
    const report = await this.backend.importItems(request, this.vault ?? "", folder);
    await this.refresh();
    return report;
  }

  async selectVault(name: string) {
    await this.attempt(() => this.openVault(name));
  }

  async createVault(name: string): Promise<boolean> {
    const created = await this.attempt(async () => {
      const vault = await this.backend.createVault(name.trim());
      this.vaults = await this.backend.listVaults();
      await this.openVault(vault.name);
      return true;
    });
    return created ?? false;
  }

  async renameVault(newName: string): Promise<boolean> {
    const vault = this.vault;
    if (!vault) return false;
    const done = await this.attempt(async () => {
      await this.backend.renameVault(vault, newName.trim());
      this.vault = newName.trim();
      this.vaults = await this.backend.listVaults();
      return true;
    });
    return done ?? false;
  }

  async deleteVault() {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      await this.backend.deleteVault(vault);
      this.vault = null;
      this.vaults = await this.backend.listVaults();
      await this.openVault(this.vaults[0]?.name ?? null);
      this.notice = `“${vault}” moved to Recently deleted. You can restore it there for 30 days.`;
    });
  }

  async openSecret(path: string, version: string | null = null) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      const secret = await this.backend.readSecret(vault, path, version ?? undefined);
      this.pane = { kind: "view", secret, version };
    });
  }

  newSecret(type: ItemType = "login") {
    this.error = null;
    this.pane = { kind: "edit", isNew: true, draft: { path: "", title: "", item: blankItem(type), fields: [], attachments: [] } };
  }

  editSecret() {
    if (this.pane.kind !== "view") return;
    this.pane = { kind: "edit", isNew: false, draft: structuredClone($state.snapshot(this.pane.secret)) };
  }

  /** Every folder of the open vault, for the editor's folder list. */
  get folders(): string[] {
    return foldersOf(this.secrets);
  }

  /** Save the editor's draft. A new secret is named from its title in
   * `folder` (unless the draft names a path itself); an existing one keeps
   * its name when its title changes, and moves when `folder` differs from
   * its own. Websites are trimmed, bare domains taken as https, empty ones
   * dropped. */
  async save(draft: SecretDto, isNew: boolean, folder?: string) {
    const vault = this.vault;
    if (!vault) return;
    const title = draft.title.trim();
    let path = draft.path.trim();
    if (isNew && !path) {
      if (!title) {
        this.error = "Give the secret a title.";
        return;
      }
      const derived = pathForNew(title, folder ?? "", this.secrets);
      if (!derived) {
        this.error = "Give the secret a title with a letter or digit in it.";
        return;
      }
      path = derived;
    }
    if (!path) {
      this.error = "Give the secret a title.";
      return;
    }
    const item =
      draft.item.type === "login"
        ? { ...draft.item, urls: draft.item.urls.map(normaliseWebsite).filter(Boolean) }
        : draft.item;
    // A plain secret has no custom fields or files; blank custom rows go.
    const plain = item.type === "text" || item.type === "binary";
    const fields = plain ? [] : (draft.fields ?? []).filter((f) => f.name.trim() || f.value);
    if (fields.some((f) => !f.name.trim())) {
      this.error = "Give every custom field a name.";
      return;
    }
    const attachments = plain ? [] : (draft.attachments ?? []);
    const secret = { ...draft, path, item, fields, attachments, title: title || path.split("/").pop() || path };
    await this.attempt(async () => {
      await this.backend.saveSecret(vault, secret, isNew);
      if (!isNew && folder !== undefined && normaliseFolder(folder) !== folderOf(path)) {
        const others = this.secrets.filter((e) => e.path !== path);
        const to = freePath(path.split("/").pop() ?? path, folder, others);
        await this.backend.renameSecret(vault, path, to);
        path = to;
      }
      this.secrets = await this.backend.listEntries(vault);
      await this.openSecret(path);
    });
  }

  /** Go somewhere else (`go`): at once, unless the editor holds changes,
   * then only once the person chose to discard them. */
  leave(go: () => unknown) {
    if (this.pane.kind === "edit" && this.editorDirty) {
      this.leaving = go;
      return;
    }
    void go();
  }

  /** Which logins' passwords need attention (weak, reused, old). */
  async loadHealth() {
    await this.attempt(async () => {
      this.health = await this.backend.passwordHealth();
    });
  }

  /** Ask the breach service (opt-in, k-anonymity: five characters of each
   * password's SHA-1 leave the device) which logins' passwords it knows. */
  async checkBreaches() {
    await this.attempt(async () => {
      this.breached = await this.backend.breachedLogins();
    });
  }

  /** One click: a new password (by the generator's options) saved in
   * `item`'s login, as a new version; the report is made again. */
  async fixPassword(item: HealthItemDto) {
    await this.attempt(async () => {
      const secret = await this.backend.readSecret(item.vault, item.path);
      if (secret.item.type !== "login") return;
      const password = await this.generatePassword();
      await this.backend.saveSecret(item.vault, { ...secret, item: { ...secret.item, password } }, false);
      if (this.vault === item.vault) this.secrets = await this.backend.listEntries(item.vault);
      this.health = await this.backend.passwordHealth();
      // A new random password is in no breach: off that list too.
      this.breached = this.breached?.filter((b) => b.vault !== item.vault || b.path !== item.path) ?? null;
      this.notice = `A new password is saved in “${item.title}”. Change it on the website too.`;
    });
  }

  /** Discard the editor's changes and go where the person asked. */
  discardAndLeave() {
    const go = this.leaving;
    this.leaving = null;
    this.editorDirty = false;
    void go?.();
  }

  /** Back to the editor, changes kept. */
  keepEditing() {
    this.leaving = null;
  }

  cancelEdit() {
    if (this.pane.kind === "edit" && !this.pane.isNew) {
      void this.openSecret(this.pane.draft.path);
    } else {
      this.pane = { kind: "empty" };
    }
  }

  async deleteSecret(path: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      await this.backend.deleteSecret(vault, path);
      this.secrets = await this.backend.listEntries(vault);
      this.pane = { kind: "empty" };
      this.notice = `“${path}” moved to Recently deleted.`;
    });
  }

  async showHistory(path: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      this.pane = { kind: "history", path, versions: await this.backend.secretHistory(vault, path), compare: null };
    });
  }

  /** Show two versions of the secret in the history pane side by side. */
  async compare(olderId: string, newerId: string) {
    const vault = this.vault;
    const pane = this.pane;
    if (!vault || pane.kind !== "history") return;
    const find = (id: string) => pane.versions.find((v) => v.id === id);
    const older = find(olderId);
    const newer = find(newerId);
    if (!older || !newer) return;
    const read = (id: string) => this.backend.readSecret(vault, pane.path, id).catch(() => null);
    await this.attempt(async () => {
      const [a, b] = await Promise.all([read(older.id), read(newer.id)]);
      if (this.pane.kind === "history" && this.pane.path === pane.path) {
        this.pane = { ...this.pane, compare: { older: { version: older, secret: a }, newer: { version: newer, secret: b } } };
      }
    });
  }

  /** The entry for `path` in the open vault. */
  entry(path: string): EntryDto | undefined {
    return this.secrets.find((e) => e.path === path);
  }

  async toggleFavourite(path: string) {
    const vault = this.vault;
    const entry = this.entry(path);
    if (!vault || !entry) return;
    await this.attempt(async () => {
      await this.backend.setFavourite(vault, path, !entry.favourite);
      this.secrets = this.secrets.map((e) => (e.path === path ? { ...e, favourite: !entry.favourite } : e));
    });
  }

  async restore(path: string, version: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      await this.backend.restoreSecret(vault, path, version);
      await this.openSecret(path);
      this.notice = "Restored. The newer versions stay in the history.";
    });
  }

  async copy(path: string, field: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      const seconds = await this.backend.copyField(vault, path, field);
      this.notice = `Copied. The clipboard clears in ${seconds} seconds.`;
    });
  }

  /** Ask for a file to attach to the item being edited; null if the person
   * cancelled. It is written with the item when that is saved. */
  async attachFile(): Promise<AttachmentDto | null> {
    const vault = this.vault;
    if (!vault) return null;
    let attached: AttachmentDto | null = null;
    await this.attempt(async () => {
      attached = await this.backend.attachFile(vault);
    });
    return attached;
  }

  /** Save an attachment of the item at `path` (at `version`, if given) to a
   * file the person picks. */
  async saveAttachment(path: string, file: string, version: string | null = null) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      const saved = await this.backend.saveAttachment(vault, path, file, version);
      if (saved) this.notice = `Saved to ${saved}.`;
    });
  }

  async saveAsFile(path: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      const saved = await this.backend.saveSecretFile(vault, path);
      if (saved) this.notice = `Saved to ${saved}.`;
    });
  }

  async openUrl(url: string) {
    await this.attempt(() => this.backend.openUrl(url));
  }

  totp(setting: string): Promise<TotpDto> {
    return this.backend.totpCode(setting);
  }

  /** A new password as the generator's options say (saved on this device
   * for next time). */
  async generatePassword(options: GeneratorOptions = this.generator) {
    this.generator = sanitize(options);
    saveGenerator(this.generator);
    if (this.generator.mode === "passphrase") {
      // The node joins the words with "-"; the words are letters only.
      const words = await this.backend.generatePassphrase(this.generator.words);
      return words.split("-").join(this.generator.separator);
    }
    return this.backend.generatePassword(rulesOf(this.generator));
  }

  strength(password: string) {
    return this.backend.passwordStrength(password);
  }

  /** Forget everything decrypted: called when the node locks. */
  clear() {
    this.vaults = [];
    this.vault = null;
    this.secrets = [];
    this.query = "";
    this.filter = "all";
    this.pane = { kind: "empty" };
    this.notice = null;
    this.error = null;
    this.leaving = null;
    this.editorDirty = false;
  }
}
