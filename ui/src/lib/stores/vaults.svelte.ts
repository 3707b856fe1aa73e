// The vault browser's state: which vault and secret are open, the search,
// and the editor. Components render it and call its methods.
import { type Backend, toBackendError } from "../backend";
import type { ItemDto, SecretDto, TotpDto, VaultDto, VersionDto } from "../bindings";

export type Pane =
  | { kind: "empty" }
  | { kind: "view"; secret: SecretDto; version: string | null }
  | { kind: "edit"; draft: SecretDto; isNew: boolean }
  | { kind: "history"; path: string; versions: VersionDto[] };

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
    case "text":
      return { type, text: "" };
    case "binary":
      return { type, size: 0 };
  }
}

/** Case-insensitive match of every word of `query` against a secret's path. */
export function matches(path: string, query: string): boolean {
  const haystack = path.toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((word) => haystack.includes(word));
}

export class VaultBrowser {
  vaults = $state<VaultDto[]>([]);
  vault = $state<string | null>(null);
  secrets = $state<string[]>([]);
  query = $state("");
  pane = $state<Pane>({ kind: "empty" });
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  busy = $state(false);

  readonly visible = $derived(this.secrets.filter((path) => matches(path, this.query)));

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

  async openVault(name: string | null) {
    this.vault = name;
    this.query = "";
    this.pane = { kind: "empty" };
    this.secrets = name ? await this.backend.listSecrets(name) : [];
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
    this.pane = { kind: "edit", isNew: true, draft: { path: "", title: "", item: blankItem(type) } };
  }

  editSecret() {
    if (this.pane.kind !== "view") return;
    this.pane = { kind: "edit", isNew: false, draft: structuredClone($state.snapshot(this.pane.secret)) };
  }

  async save(draft: SecretDto, isNew: boolean) {
    const vault = this.vault;
    if (!vault) return;
    const path = draft.path.trim();
    if (!path) {
      this.error = "Give the secret a name.";
      return;
    }
    const secret = { ...draft, path, title: draft.title.trim() || path.split("/").pop() || path };
    await this.attempt(async () => {
      await this.backend.saveSecret(vault, secret, isNew);
      this.secrets = await this.backend.listSecrets(vault);
      await this.openSecret(path);
    });
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
      this.secrets = await this.backend.listSecrets(vault);
      this.pane = { kind: "empty" };
    });
  }

  async showHistory(path: string) {
    const vault = this.vault;
    if (!vault) return;
    await this.attempt(async () => {
      this.pane = { kind: "history", path, versions: await this.backend.secretHistory(vault, path) };
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

  totp(setting: string): Promise<TotpDto> {
    return this.backend.totpCode(setting);
  }

  generatePassword(length = 20) {
    return this.backend.generatePassword({
      length,
      lowercase: true,
      uppercase: true,
      digits: true,
      symbols: true,
      avoidAmbiguous: false,
    });
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
    this.pane = { kind: "empty" };
    this.notice = null;
    this.error = null;
  }
}
