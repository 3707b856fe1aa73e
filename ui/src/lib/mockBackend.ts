// An in-memory node for component tests: same interface, same error codes.
import { type Backend, BackendError } from "./backend";
import { reveal } from "./format";
import type {
  AttachmentDto,
  BackupDto,
  ImportPreviewDto,
  ImportReportDto,
  ImportRequestDto,
  BackupSchedule,
  RestoredDto,
  ConflictDto,
  ContactDto,
  CreatedDto,
  DeletedSecretDto,
  DeletedVaultDto,
  DeviceDto,
  DeviceDisputeDto,
  RemovalEffectDto,
  DeviceNoticeDto,
  InvitationDto,
  JoinedDto,
  NotificationDto,
  PairingStateDto,
  PersonDto,
  SyncStatusDto,
  EntryDto,
  HealthItemDto,
  IdentityLogin,
  KeyringStatusDto,
  LinkedIdentity,
  PasswordRulesDto,
  Preferences,
  QuickItemDto,
  SecretDto,
  StatusDto,
  StrengthDto,
  TotpDto,
  VaultDto,
  VaultSharingDto,
  VersionDto,
} from "./bindings";

interface MockVault {
  id: string;
  secrets: Map<string, SecretDto>;
  favourites: Set<string>;
  history: Map<string, { version: VersionDto; secret: SecretDto | null }[]>;
}

const DAY_MS = 86_400_000;

const WORDS = Array.from({ length: 24 }, (_, i) => `word${i + 1}`);

export class MockBackend implements Backend {
  state: StatusDto["state"] = "uninitialised";
  nodeId: string | null = null;
  password: string | null = null;
  copied: string[] = [];
  vaults = new Map<string, MockVault>();
  private counter = 0;

  static locked(password: string, nodeId = "vmocknode"): MockBackend {
    const backend = new MockBackend();
    backend.state = "locked";
    backend.password = password;
    backend.nodeId = nodeId;
    return backend;
  }

  async status(): Promise<StatusDto> {
    return { state: this.state, nodeId: this.nodeId };
  }

  async createNode(password: string): Promise<CreatedDto> {
    if (this.state !== "uninitialised") throw new BackendError("already_exists", "a node already exists here");
    this.state = "unlocked";
    this.password = password;
    this.nodeId = "vmocknode";
    return { nodeId: this.nodeId, recoveryCode: WORDS.join(" ") };
  }

  deviceName: string | null = null;

  async passwordHealth(): Promise<HealthItemDto[]> {
    this.requireUnlocked();
    const logins: { item: HealthItemDto; password: string }[] = [];
    for (const [name, v] of this.vaults) {
      for (const secret of v.secrets.values()) {
        if (secret.item.type !== "login" || !secret.item.password) continue;
        const { score } = await this.passwordStrength(secret.item.password);
        logins.push({
          password: secret.item.password,
          item: { vault: name, path: secret.path, title: secret.title, username: secret.item.username, score, weak: score < 3, reused: 0, changed: 1, old: false, breached: 0 },
        });
      }
    }
    return logins
      .map(({ item, password }) => ({ ...item, reused: logins.filter((l) => l.password === password).length - 1 }))
      .filter((i) => i.weak || i.reused > 0 || i.old)
      .sort((a, b) => a.score - b.score || b.reused - a.reused || a.path.localeCompare(b.path));
  }

  /** Passwords the mock breach service knows, with how often seen. */
  breachedPasswords = new Map<string, number>([["password123", 251682]]);

  async breachedLogins(): Promise<HealthItemDto[]> {
    this.requireUnlocked();
    if (!this.prefs.breachCheck) {
      throw new BackendError("invalid_input", "the breach check is off; turn it on in Settings, Security");
    }
    const out: HealthItemDto[] = [];
    for (const [name, v] of this.vaults) {
      for (const secret of v.secrets.values()) {
        if (secret.item.type !== "login") continue;
        const seen = this.breachedPasswords.get(secret.item.password) ?? 0;
        if (seen > 0) {
          out.push({ vault: name, path: secret.path, title: secret.title, username: secret.item.username, score: 0,
            weak: true, reused: 0, changed: 1, old: false, breached: seen });
        }
      }
    }
    return out;
  }

  async suggestedDeviceName(): Promise<string> {
    return "mock-laptop";
  }

  async setDeviceName(name: string): Promise<void> {
    this.requireUnlocked();
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 64 || /[\u0000-\u001f]/.test(trimmed)) {
      throw new BackendError("invalid_input", "A device name is 1 to 64 characters on one line, like “Laptop”.");
    }
    this.deviceName = trimmed;
  }

  async unlock(password: string): Promise<void> {
    if (password !== this.password) throw new BackendError("wrong_password", "wrong password");
    this.state = "unlocked";
  }

  async lock(): Promise<void> {
    this.state = "locked";
  }

  async recover(code: string, password: string): Promise<void> {
    if (code !== WORDS.join(" ")) throw new BackendError("recovery_code_mismatch", "different node");
    this.password = password;
    this.nodeId = "vmocknode";
    this.state = "unlocked";
  }

  async changePassword(old: string, next: string): Promise<void> {
    this.requireUnlocked();
    if (old !== this.password) throw new BackendError("wrong_password", "wrong password");
    if ([...next].length < 8) throw new BackendError("password_too_short", "too short");
    // Keyring unlock follows the password, as the app does.
    if (this.keyringKey === `kek-of-${old}`) this.keyringKey = `kek-of-${next}`;
    this.password = next;
  }

  async appVersion(): Promise<string> {
    return "0.1.0";
  }

  async dataDirectory(): Promise<string> {
    return "/home/alice/.local/share/polykey";
  }

  async copyText(text: string): Promise<void> {
    this.copied.push(text);
  }

  private requireUnlocked() {
    if (this.state !== "unlocked") throw new BackendError("locked", "the node is locked");
  }

  private vault(name: string): MockVault {
    const vault = this.vaults.get(name);
    if (!vault) throw new BackendError("unknown_vault", `no vault named '${name}'`);
    return vault;
  }

  private record(vault: MockVault, path: string, secret: SecretDto | null, message: string): string {
    this.counter += 1;
    const id = this.counter.toString(16).padStart(40, "0");
    const entries = vault.history.get(path) ?? [];
    entries.unshift({ version: { id, author: this.nodeId ?? "", authorName: this.deviceName, time: this.counter, message, path: "" }, secret });
    vault.history.set(path, entries);
    return id;
  }

  async listVaults(): Promise<VaultDto[]> {
    return [...this.vaults.entries()]
      .map(([name, v]) => ({ id: v.id, name }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async createVault(name: string): Promise<VaultDto> {
    if (this.vaults.has(name)) throw new BackendError("vault_exists", `a vault named '${name}' already exists`);
    const id = `vault${this.vaults.size + 1}`;
    this.vaults.set(name, { id, secrets: new Map(), favourites: new Set(), history: new Map() });
    return { id, name };
  }

  async renameVault(vault: string, newName: string): Promise<void> {
    const v = this.vault(vault);
    this.vaults.delete(vault);
    this.vaults.set(newName, v);
  }

  // Recently deleted: vaults kept with their contents for 30 days.
  deletedVaultList: (DeletedVaultDto & { contents: MockVault })[] = [];
  deletedSecretList: DeletedSecretDto[] = [];

  async deleteVault(vault: string): Promise<void> {
    const contents = this.vault(vault);
    this.vaults.delete(vault);
    const now = Date.now();
    this.deletedVaultList.unshift({
      id: contents.id, name: vault, deletedAt: now, deletedBy: this.nodeId ?? "", purgeAt: now + 30 * DAY_MS, contents,
    });
  }

  async deletedVaults(): Promise<DeletedVaultDto[]> {
    this.requireUnlocked();
    return this.deletedVaultList.map(({ contents: _, ...dto }) => dto);
  }

  async restoreDeletedVault(id: string): Promise<VaultDto> {
    const found = this.deletedVaultList.find((v) => v.id === id);
    if (!found) throw new BackendError("unknown_vault", "no deleted vault with that id");
    if (this.vaults.has(found.name)) throw new BackendError("vault_exists", `a vault named '${found.name}' already exists`);
    this.deletedVaultList = this.deletedVaultList.filter((v) => v !== found);
    this.vaults.set(found.name, found.contents);
    return { id, name: found.name };
  }

  async deletedSecrets(): Promise<DeletedSecretDto[]> {
    this.requireUnlocked();
    return [...this.deletedSecretList];
  }

  async listEntries(vault: string): Promise<EntryDto[]> {
    const v = this.vault(vault);
    return [...v.secrets.values()]
      .map((secret) => entryOf(secret, v.favourites.has(secret.path)))
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  async setFavourite(vault: string, path: string, favourite: boolean): Promise<void> {
    const v = this.vault(vault);
    if (favourite) v.favourites.add(path);
    else v.favourites.delete(path);
  }

  async readSecret(vault: string, path: string, version?: string): Promise<SecretDto> {
    const v = this.vault(vault);
    if (version) {
      const found = v.history.get(path)?.find((h) => h.version.id === version)?.secret;
      if (!found) throw new BackendError("secret_not_found", `no secret at '${path}'`);
      return structuredClone(found);
    }
    const secret = v.secrets.get(path);
    if (!secret) throw new BackendError("secret_not_found", `no secret at '${path}'`);
    return structuredClone(secret);
  }

  async saveSecret(vault: string, secret: SecretDto, isNew: boolean): Promise<string> {
    const v = this.vault(vault);
    if (isNew && v.secrets.has(secret.path)) throw new BackendError("secret_exists", `'${secret.path}' already exists`);
    const verb = v.secrets.has(secret.path) ? "Update" : "Add";
    v.secrets.set(secret.path, structuredClone(secret));
    return this.record(v, secret.path, structuredClone(secret), `${verb} secret ${secret.path}`);
  }

  async deleteSecret(vault: string, path: string): Promise<string> {
    const v = this.vault(vault);
    const holding = v.history.get(path)?.[0]?.version.id;
    v.secrets.delete(path);
    v.favourites.delete(path);
    const id = this.record(v, path, null, `Remove ${path}`);
    if (holding) this.deletedSecretList.unshift({ vault, path, deletedAt: Date.now(), version: holding });
    return id;
  }

  async renameSecret(vault: string, from: string, to: string): Promise<string> {
    const v = this.vault(vault);
    const secret = v.secrets.get(from);
    if (!secret) throw new BackendError("secret_not_found", `'${from}' not found`);
    if (v.secrets.has(to)) throw new BackendError("secret_exists", `'${to}' already exists`);
    v.secrets.delete(from);
    const moved = { ...secret, path: to };
    v.secrets.set(to, moved);
    if (v.favourites.delete(from)) v.favourites.add(to);
    // As the node: the moved secret's history follows it (each earlier
    // version says where it was then); the old path's ends here.
    const earlier = (v.history.get(from) ?? []).map((h) => ({ ...h, version: { ...h.version, path: h.version.path || from } }));
    this.record(v, from, null, `Rename ${from} to ${to}`);
    const id = this.record(v, to, structuredClone(moved), `Rename ${from} to ${to}`);
    v.history.set(to, [...(v.history.get(to) ?? []), ...earlier]);
    return id;
  }

  async secretHistory(vault: string, path: string): Promise<VersionDto[]> {
    return (this.vault(vault).history.get(path) ?? []).map((h) => h.version);
  }

  async restoreSecret(vault: string, path: string, version: string): Promise<string> {
    const old = await this.readSecret(vault, path, version);
    const v = this.vault(vault);
    v.secrets.set(path, old);
    this.deletedSecretList = this.deletedSecretList.filter((d) => d.vault !== vault || d.path !== path);
    return this.record(v, path, structuredClone(old), `Restore ${path} to version ${version.slice(0, 8)}`);
  }

  async copyField(vault: string, path: string, field: string): Promise<number> {
    const secret = await this.readSecret(vault, path);
    // As the node: `custom#N` by place (its name after a colon must match), `custom:Name` by name.
    const placed = /^custom#(\d+)(?::(.*))?$/s.exec(field);
    const byPlace = placed ? secret.fields[Number(placed[1])] : undefined;
    const custom = placed
      ? (byPlace && (placed[2] === undefined || placed[2] === byPlace.name) ? byPlace.value : undefined)
      : field.startsWith("custom:") ? secret.fields.find((f) => `custom:${f.name}` === field)?.value : undefined;
    const value = custom ?? (secret.item as Record<string, unknown>)[field];
    if (typeof value !== "string") throw new BackendError("bad_item", `this secret has no field '${field}'`);
    this.copied.push(value);
    return 30;
  }

  async totpCode(_setting: string): Promise<TotpDto> {
    return { code: "123456", secondsLeft: 20, period: 30 };
  }

  async generatePassword(rules: PasswordRulesDto): Promise<string> {
    return "x".repeat(rules.length);
  }

  async generatePassphrase(words: number): Promise<string> {
    return Array.from({ length: words }, () => "word").join("-");
  }

  async passwordStrength(password: string): Promise<StrengthDto> {
    const score = Math.min(4, Math.floor(password.length / 5));
    return { bits: password.length * 4, score };
  }

  touches = 0;
  private lockedHandlers: (() => void)[] = [];

  async touch(): Promise<void> {
    this.touches += 1;
  }

  async onLocked(handler: () => void): Promise<void> {
    this.lockedHandlers.push(handler);
  }

  /** Simulate the node locking itself after idling. */
  autoLock() {
    this.state = "locked";
    for (const handler of this.lockedHandlers) handler();
  }

  keyringAvailable = true;
  keyringKey: string | null = null;

  async keyringStatus(): Promise<KeyringStatusDto> {
    return this.keyringAvailable
      ? { available: true, enabled: this.keyringKey !== null, problem: null }
      : { available: false, enabled: false, problem: "the system keyring is unavailable" };
  }

  async enableKeyringUnlock(password: string): Promise<void> {
    if (password !== this.password) throw new BackendError("wrong_password", "wrong password");
    if (!this.keyringAvailable) throw new BackendError("keyring_unavailable", "the system keyring is unavailable");
    this.keyringKey = `kek-of-${password}`;
  }

  async disableKeyringUnlock(): Promise<void> {
    this.keyringKey = null;
  }

  async unlockWithKeyring(): Promise<void> {
    if (this.keyringKey !== `kek-of-${this.password}`) throw new BackendError("keyring_not_enabled", "not turned on");
    this.state = "unlocked";
  }

  /** Files an import may read: path → CSV text (comma-separated, no quotes). */
  files = new Map<string, string>();

  private csvRows(request: ImportRequestDto) {
    const text = this.files.get(request.file);
    if (text === undefined) throw new BackendError("invalid_input", `nothing was imported: cannot read ${request.file}`);
    const lines = text.trim().split("\n").map((line) => line.split(","));
    const head = lines[0];
    // Without a header row, the first row is an entry.
    const rows = request.noHeader ? lines : lines.slice(1);
    const known = head.includes("name") && head.includes("password")
      ? { title: "name", username: "username", password: "password", url: "url" } : null;
    const mapping: Record<string, string> | null = request.mapping
      ? Object.fromEntries(request.mapping.split(",").map((pair) => pair.split("=") as [string, string])) : known;
    // A column by place (`#1` the first, within the first row), or by name, as the node reads a mapping.
    const at = (column: string) => {
      const place = /^#(\d+)$/.exec(column);
      if (!place) return head.indexOf(column);
      const n = Number(place[1]);
      if (n < 1 || n > head.length) throw new BackendError("invalid_input", `nothing was imported: columns are #1 to #${head.length}`);
      return n - 1;
    };
    const cell = (row: string[], field: string) => (mapping?.[field] ? row[at(mapping[field])] ?? "" : "");
    const items = rows.map((row) => ({
      title: cell(row, "title"), username: cell(row, "username"), password: cell(row, "password"), url: cell(row, "url"),
    }));
    return { head, mapping, items, source: request.mapping ? "CSV" : "Chrome" };
  }

  /** Whether a preview's parse is held, as the node keeps it for its import. */
  previewHeld = false;

  async importPreview(request: ImportRequestDto, _vault: string): Promise<ImportPreviewDto> {
    const { head, mapping, items, source } = this.csvRows(request);
    this.previewHeld = Boolean(mapping);
    const empty = { source: "", total: 0, counts: [], first: [], skipped: [], skippedTotal: 0, needsMapping: false,
      columns: [], problem: null, needsPassword: false, duplicates: 0, duplicateTitles: [] };
    if (!mapping) return { ...empty, needsMapping: true, columns: head, problem: "the columns are not those of an export this knows" };
    return {
      ...empty, source, total: items.length, counts: [{ kind: "login", count: items.length }],
      first: items.slice(0, 10).map((i) => ({ title: i.title, kind: "login", folder: "", username: i.username, url: i.url })),
    };
  }

  async importForget(): Promise<void> {
    this.previewHeld = false;
  }

  async importItems(request: ImportRequestDto, vault: string, folder: string): Promise<ImportReportDto> {
    this.previewHeld = false;
    const { items, source } = this.csvRows(request);
    for (const item of items) {
      const path = folder ? `${folder}/${item.title}` : item.title;
      await this.saveSecret(vault, {
        path, title: item.title,
        item: { type: "login", username: item.username, password: item.password, urls: [item.url], totp: null, notes: "" },
        fields: [], attachments: [],
      }, true);
    }
    return { source, imported: items.length, replaced: 0, skippedDuplicates: 0, skippedTotal: 0, version: "mock" };
  }

  schedule: BackupSchedule | null = null;
  backupPassphrase: string | null = null;
  backups: string[] = [];

  async backupSchedule(): Promise<BackupSchedule | null> {
    return this.schedule;
  }

  async setBackupSchedule(folder: string, everyHours: number, keep: number, passphrase: string): Promise<BackupSchedule> {
    if (!folder.startsWith("/")) throw new BackendError("invalid_input", `${folder} is not a folder here; choose an existing folder`);
    if (passphrase.length < 8) throw new BackendError("invalid_input", "the passphrase must be at least 8 characters long");
    this.backupPassphrase = passphrase;
    this.schedule = { folder, everyHours, keep, lastSuccess: null, lastFile: null, lastError: null, nextDue: 0 };
    return this.schedule;
  }

  async clearBackupSchedule(): Promise<void> {
    this.schedule = null;
  }

  async backUpNow(): Promise<BackupDto> {
    if (!this.schedule) throw new BackendError("invalid_input", "set up backups first: a folder and a passphrase");
    const now = Math.floor(Date.now() / 1000);
    const file = `polykey-${this.backups.length + 1}.backup`;
    this.backups = [...this.backups, file].slice(-this.schedule.keep);
    this.schedule = { ...this.schedule, lastSuccess: now, lastFile: file, lastError: null, nextDue: now + this.schedule.everyHours * 3600 };
    const vaults = [...this.vaults.entries()].map(([name, v]) => ({ name, id: v.id, objects: v.secrets.size }));
    return { createdAt: now, node: this.nodeId ?? "", vaults, bytes: 1024 };
  }

  async restoreBackup(file: string, passphrase: string): Promise<RestoredDto[]> {
    if (passphrase !== this.backupPassphrase) throw new BackendError("wrong_password", "wrong passphrase for this backup");
    if (!this.backups.some((b) => file.endsWith(b))) throw new BackendError("io", "could not read the backup file");
    return [...this.vaults.keys()].map((name) => ({ name, how: "unchanged" }));
  }

  prefs: Preferences = { autoLockSecs: 600, clipboardClearSecs: 30, shortcut: "CommandOrControl+Shift+Space", tray: true,
    breachCheck: false, breachEndpoint: "https://api.pwnedpasswords.com/range/" };

  async preferences(): Promise<Preferences> {
    return { ...this.prefs };
  }

  async setPreferences(preferences: Preferences): Promise<void> {
    if (preferences.clipboardClearSecs < 5) throw new BackendError("bad_preference", "too short");
    this.prefs = { ...preferences };
  }

  async quickSearch(query: string): Promise<QuickItemDto[]> {
    if (this.state !== "unlocked") throw new BackendError("locked", "the node is locked");
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const found: QuickItemDto[] = [];
    for (const [name, v] of this.vaults) {
      for (const secret of v.secrets.values()) {
        const entry = entryOf(secret, v.favourites.has(secret.path));
        const haystack = [entry.title, entry.path, entry.username, ...entry.urls, name].join("\n").toLowerCase();
        if (words.every((w) => haystack.includes(w))) {
          found.push({ vault: name, path: entry.path, title: entry.title, username: entry.username, kind: entry.kind, favourite: entry.favourite });
        }
      }
    }
    return found.sort((a, b) => Number(b.favourite) - Number(a.favourite) || a.title.localeCompare(b.title));
  }

  hidden = 0;
  shownMain = 0;

  async quickCopy(vault: string, path: string): Promise<number> {
    const seconds = await this.copyField(vault, path, "password");
    this.hidden += 1;
    return seconds;
  }

  async hidePalette(): Promise<void> {
    this.hidden += 1;
  }

  async showMainWindow(): Promise<void> {
    this.shownMain += 1;
  }

  savedFiles: string[] = [];
  opened: string[] = [];

  /** What the next "Attach file" picks (null: the person cancels). */
  nextAttachment: { name: string; size: number } | null = null;
  savedAttachments: string[] = [];

  async attachFile(vault: string): Promise<AttachmentDto | null> {
    this.vault(vault);
    const picked = this.nextAttachment;
    if (!picked) return null;
    return { name: picked.name, size: picked.size, file: `.attachments/${picked.name.length.toString(16).padStart(64, "0")}` };
  }

  async saveAttachment(vault: string, path: string, file: string, version: string | null): Promise<string | null> {
    const secret = await this.readSecret(vault, path, version ?? undefined);
    const found = secret.attachments.find((a) => a.file === file);
    if (!found) throw new BackendError("secret_not_found", "there is no secret or directory at that path");
    this.savedAttachments.push(found.name);
    return `/home/user/${found.name}`;
  }

  async saveSecretFile(vault: string, path: string): Promise<string | null> {
    await this.readSecret(vault, path);
    this.savedFiles.push(path);
    return `/home/user/${path.split("/").pop()}`;
  }

  async openUrl(url: string): Promise<void> {
    if (!/^https?:\/\//i.test(url.trim())) throw new BackendError("bad_item", "only http and https links can be opened");
    // As the desktop's `openable_url`: no user before the host, nothing hidden.
    const parsed = URL.canParse(url.trim()) ? new URL(url.trim()) : null;
    if (!parsed || parsed.username !== "" || parsed.password !== "" || reveal(url) !== url) {
      throw new BackendError("bad_item", "this link hides where it goes; it was not opened");
    }
    this.opened.push(url);
  }

  private paletteHandlers: (() => void)[] = [];

  async onPaletteOpened(handler: () => void): Promise<void> {
    this.paletteHandlers.push(handler);
  }

  /** Simulate the global shortcut opening the palette. */
  openPalette() {
    for (const handler of this.paletteHandlers) handler();
  }

  // Devices: joined through `joinDevice` + `confirmJoin`, or by a joiner
  // arriving at the invitation (`joinerArrives`) + `confirmPairing`.
  paired: DeviceDto[] = [];
  notices: DeviceNoticeDto[] = [];
  disputes: DeviceDisputeDto[] = [];
  /** Devices out, by the paired device that removed them. */
  removals = new Map<string, string[]>();
  /** Devices joined to this one only through another (device to it). */
  pairedThrough = new Map<string, string>();
  revoked: string[] = [];
  invitation: InvitationDto | null = null;
  pairing: PairingStateDto = { state: "idle" };
  conflictList: ConflictDto[] = [];
  private changeHandlers: (() => void)[] = [];

  async devices(): Promise<DeviceDto[]> {
    this.requireUnlocked();
    const me: DeviceDto = { nodeId: this.nodeId ?? "", thisDevice: true, online: true, lastSeen: Date.now(), addresses: ["/ip4/127.0.0.1/tcp/4100"], name: this.deviceName };
    return [me, ...this.paired];
  }

  async inviteDevice(): Promise<InvitationDto> {
    this.requireUnlocked();
    const expiresAt = Math.floor(Date.now() / 1000) + 600;
    this.invitation = { code: "polykey-pair:mock", words: "apple banana cherry delta", expiresAt, qrSvg: "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>" };
    this.pairing = { state: "waiting", expiresAt };
    return this.invitation;
  }

  async pairingState(): Promise<PairingStateDto> {
    return this.pairing;
  }

  async copyPairingCode(): Promise<number> {
    if (!this.invitation) throw { code: "pairingExpired", message: "the invitation is no longer open" };
    await this.copyText(this.invitation.code);
    return 30;
  }

  async cancelInvitation(): Promise<void> {
    this.invitation = null;
    this.pairing = { state: "idle" };
  }

  /** The inviting side: a joiner proved the code; both screens show digits. */
  joinerArrives(device = "vmockjoiner", fingerprint = "654 321") {
    this.pairing = { state: "confirming", device, fingerprint };
  }

  /** Whether the inviter said the digits match. */
  inviterAccepted = false;

  async confirmPairing(accept: boolean): Promise<void> {
    if (this.pairing.state !== "confirming") throw new BackendError("pairing_failed", "no device is waiting for confirmation");
    if (!accept) {
      this.pairing = { state: "failed", message: "Pairing cancelled. Nothing was recorded." };
      this.invitation = null;
      return;
    }
    this.inviterAccepted = true;
  }

  /** The joining device confirmed too: the link is recorded. */
  joinerConfirms() {
    if (this.pairing.state !== "confirming" || !this.inviterAccepted) return;
    const { device, fingerprint } = this.pairing;
    this.paired.push({ nodeId: device, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    this.pairing = { state: "paired", device, fingerprint };
    this.invitation = null;
    this.inviterAccepted = false;
  }

  /** The joining side: the join waiting for `confirmJoin`. */
  pendingJoin: JoinedDto | null = null;
  /** What the other device answers when this one confirms a join. */
  otherDeviceAnswer: "match" | "cancel" = "match";
  /** Resolve to let a pending `confirmJoin(true)` finish (tests of the wait). */
  otherDeviceAnswers: Promise<void> = Promise.resolve();

  async joinDevice(code: string): Promise<JoinedDto> {
    this.requireUnlocked();
    if (!code.trim().startsWith("polykey-pair:")) throw new BackendError("pairing_failed", "malformed pairing data: not a pairing code");
    if (code.includes("used")) throw new BackendError("pairing_used", "this pairing code was already used; show a new one");
    this.pendingJoin = { device: "vmockinviter", fingerprint: "123 456" };
    return this.pendingJoin;
  }

  async confirmJoin(accept: boolean): Promise<void> {
    const pending = this.pendingJoin;
    if (!pending) throw new BackendError("pairing_failed", "no pairing is waiting for confirmation");
    if (!accept) {
      this.pendingJoin = null;
      return;
    }
    await this.otherDeviceAnswers;
    if (this.pendingJoin !== pending) throw new BackendError("pairing_failed", "pairing cancelled");
    this.pendingJoin = null;
    if (this.otherDeviceAnswer === "cancel") {
      throw new BackendError("pairing_failed", "the other device cancelled the pairing; nothing was recorded");
    }
    this.paired.push({ nodeId: pending.device, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
  }

  /** What the file dialog returns in tests: a code, or null for cancel. */
  pictureCode: string | null = null;

  async joinFromQrPicture(): Promise<JoinedDto | null> {
    return this.pictureCode === null ? null : this.joinDevice(this.pictureCode);
  }

  async deviceNotices(): Promise<DeviceNoticeDto[]> {
    this.requireUnlocked();
    return [...this.notices];
  }

  async deviceDisputes(): Promise<DeviceDisputeDto[]> {
    this.requireUnlocked();
    return [...this.disputes];
  }

  async removalEffect(device: string): Promise<RemovalEffectDto> {
    this.requireUnlocked();
    // What it removed, but for those another device that stays removed too.
    const heldElsewhere = (n: string) =>
      [...this.removals].some(([by, out]) => by !== device && !this.revoked.includes(by) && out.includes(n));
    const kept = (this.removals.get(device) ?? [])
      .filter((d) => !this.revoked.includes(d) && !heldElsewhere(d))
      .map((d) => ({ device: d, name: null, disputed: false }));
    const disputed = this.disputes
      .filter((d) => d.removedBy.includes(device) && !kept.some((k) => k.device === d.device))
      .map((d) => ({ device: d.device, name: d.name, disputed: true }));
    const going = [...this.pairedThrough]
      .filter(([, hub]) => hub === device)
      .map(([d]) => ({ device: d, name: this.paired.find((p) => p.nodeId === d)?.name ?? null, disputed: false }));
    return { back: [...kept, ...disputed], going };
  }

  async keepDevice(device: string): Promise<void> {
    this.notices = this.notices.filter((n) => n.device !== device);
  }

  async revokeDevice(device: string): Promise<void> {
    this.requireUnlocked();
    if (device === this.nodeId) throw new BackendError("invalid_input", "this device cannot remove itself");
    this.paired = this.paired.filter((d) => d.nodeId !== device);
    this.notices = this.notices.filter((n) => n.device !== device);
    this.revoked.push(device);
    // A device in a dispute stands again here once every device that
    // removed it is removed here.
    const left = this.disputes.filter((d) => d.device !== device);
    const settled = left.filter((d) => d.removedBy.every((by) => this.revoked.includes(by)));
    for (const d of settled) {
      this.paired.push({ nodeId: d.device, thisDevice: false, online: false, lastSeen: 0, addresses: [], name: d.name });
    }
    this.disputes = left.filter((d) => !settled.includes(d));
    // What it removed comes back, unless removed here too.
    for (const back of this.removals.get(device) ?? []) {
      const held = [...this.removals].some(([by, out]) => by !== device && !this.revoked.includes(by) && out.includes(back));
      if (!this.revoked.includes(back) && !held && !this.paired.some((p) => p.nodeId === back)) {
        this.paired.push({ nodeId: back, thisDevice: false, online: false, lastSeen: 0, addresses: [], name: null });
      }
    }
    this.removals.delete(device);
  }

  /** Paired device `remover` removed `device`: out here while `remover` is in. */
  deviceRemovedElsewhere(device: string, remover: string) {
    this.paired = this.paired.filter((d) => d.nodeId !== device);
    this.removals.set(remover, [...(this.removals.get(remover) ?? []), device]);
    this.changed();
  }

  /** Two devices removed each other: both are out here, shown as a dispute. */
  devicesRemovedEachOther(first: string, second: string, secondAddedThroughFirst = false) {
    this.paired = this.paired.filter((d) => d.nodeId !== first && d.nodeId !== second);
    const at = Date.now();
    // A device added through the one it removed is in the dispute though
    // nobody removed it.
    this.disputes = [
      { device: first, name: null, removedBy: [second], at },
      { device: second, name: null, removedBy: secondAddedThroughFirst ? [] : [first], at },
    ];
    this.changed();
  }

  /** Another device added `device`: it is listed, with a notice. */
  deviceAddedElsewhere(device: string, addedBy: string) {
    this.paired.push({ nodeId: device, thisDevice: false, online: false, lastSeen: 0, addresses: [], name: null });
    this.notices.push({ device, addedBy, addedAt: Date.now() });
    this.changed();
  }

  async syncStatus(): Promise<SyncStatusDto> {
    return { syncing: false, lastSync: 0, lastError: null, online: this.paired.filter((d) => d.online).length, conflicts: this.conflictList.length };
  }

  async conflicts(): Promise<ConflictDto[]> {
    return this.conflictList;
  }

  async resolveConflict(vault: string, path: string, theirsPath: string, keepTheirs: boolean): Promise<string> {
    const found = this.conflictList.find((c) => c.vault === vault && c.path === path && c.theirsPath === theirsPath);
    if (!found) throw new BackendError("secret_not_found", "there is no secret or directory at that path");
    this.conflictList = this.conflictList.filter((c) => c !== found);
    this.resolved.push({ path, keepTheirs });
    return "v-resolved";
  }
  resolved: { path: string; keepTheirs: boolean }[] = [];

  async onNodeChanged(handler: () => void): Promise<void> {
    this.changeHandlers.push(handler);
  }

  /** Simulate a sync changing the node. */
  changed() {
    for (const handler of this.changeHandlers) handler();
  }

  // People and sharing: people added by `addPerson`, offers arriving by
  // `offerArrives` (as from another person's node).
  personList: PersonDto[] = [];
  sharing: VaultSharingDto[] = [];
  notificationList: NotificationDto[] = [];

  async contactCode(): Promise<ContactDto> {
    this.requireUnlocked();
    return { code: `polykey-contact:mock-${this.nodeId ?? ""}`, qrSvg: "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>" };
  }

  async people(): Promise<PersonDto[]> {
    this.requireUnlocked();
    return this.personList.map((p) => ({
      ...p,
      sharedWithThem: this.sharing
        .filter((v) => v.grants.some((g) => g.person === p.name))
        .map((v) => ({ id: v.id, name: v.name, write: v.grants.find((g) => g.person === p.name)?.write ?? false, ended: false })),
      sharedWithMe: this.sharing
        .filter((v) => v.owner === p.name)
        .map((v) => ({ id: v.id, name: v.name, write: v.write, ended: v.ended })),
    }));
  }

  async addPerson(target: string): Promise<string> {
    this.requireUnlocked();
    const name = target.trim().startsWith("polykey-contact:") ? target.trim().slice("polykey-contact:".length) : target.trim();
    if (!name) throw new BackendError("invalid_input", "expected a NodeId or an identity such as github.com:alice");
    if (!this.personList.some((p) => p.name === name)) {
      this.personList.push({ name, nodes: [name], notify: false, scan: false, trustedAt: Math.floor(Date.now() / 1000), sharedWithThem: [], sharedWithMe: [] });
    }
    return name;
  }

  async removePerson(name: string): Promise<boolean> {
    const before = this.personList.length;
    this.personList = this.personList.filter((p) => p.name !== name);
    for (const v of this.sharing) {
      v.grants = v.grants.filter((g) => g.person !== name);
      if (v.owner === name) v.ended = true;
    }
    return this.personList.length < before;
  }

  async setPersonPermission(name: string, permission: "notify" | "scan", allow: boolean): Promise<void> {
    const person = this.personList.find((p) => p.name === name);
    if (!person) throw new BackendError("invalid_input", `${name} is not trusted here`);
    person[permission] = allow;
  }

  async vaultSharing(): Promise<VaultSharingDto[]> {
    return this.sharing.filter((v) => v.owner !== null || v.grants.length > 0);
  }

  async shareVault(vault: string, target: string, write: boolean): Promise<boolean> {
    const v = this.vault(vault);
    const person = await this.addPerson(target);
    let entry = this.sharing.find((s) => s.id === v.id);
    if (entry?.owner) throw new BackendError("invalid_input", `“${vault}” is ${entry.owner}'s vault; only its owner shares it`);
    if (!entry) {
      entry = { id: v.id, name: vault, owner: null, write: true, ended: false, grants: [] };
      this.sharing.push(entry);
    }
    entry.grants = [...entry.grants.filter((g) => g.person !== person), { person, write }];
    return true;
  }

  async unshareVault(vault: string, person: string): Promise<boolean> {
    const v = this.vault(vault);
    const entry = this.sharing.find((s) => s.id === v.id);
    if (!entry) return false;
    const before = entry.grants.length;
    entry.grants = entry.grants.filter((g) => g.person !== person);
    return entry.grants.length < before;
  }

  /** Another person's node offers a vault (they must be trusted). */
  offerArrives(from: string, vault: string, name: string, write: boolean) {
    this.notificationList.unshift({
      from, person: this.personList.find((p) => p.nodes.includes(from))?.name ?? null, sentAt: Date.now(),
      text: `shares the vault “${name}” with you`, read: false, share: { vault, name, write, accepted: false },
    });
  }

  async notifications(): Promise<NotificationDto[]> {
    this.requireUnlocked();
    const out = this.notificationList.map((n) => ({ ...n }));
    for (const n of this.notificationList) n.read = true;
    return out;
  }

  async acceptShare(vault: string): Promise<VaultDto> {
    const offer = this.notificationList.find((n) => n.share?.vault === vault);
    if (!offer?.share) throw new BackendError("invalid_input", "no such share was offered");
    let name = offer.share.name;
    while (this.vaults.has(name)) name = `${name} (shared)`;
    this.vaults.set(name, { id: vault, secrets: new Map(), favourites: new Set(), history: new Map() });
    offer.share.accepted = true;
    this.sharing.push({ id: vault, name, owner: offer.person ?? offer.from, write: offer.share.write, ended: false, grants: [] });
    return { id: vault, name };
  }

  async dismissShare(vault: string): Promise<void> {
    this.notificationList = this.notificationList.filter((n) => n.share?.vault !== vault);
  }

  /** What picking a QR picture gives (null: cancelled). */
  pictureContact: string | null = null;

  async contactFromQrPicture(): Promise<string | null> {
    return this.pictureContact;
  }

  // Linking an account: the login started, approved when `approveLogin` is
  // called with the account's login.
  linked: LinkedIdentity[] = [];
  private approved: ((login: string) => void) | null = null;
  private loggedIn: string | null = null;

  async identityLoginStart(provider: string): Promise<IdentityLogin> {
    if (provider !== "github.com") throw new BackendError("invalid_input", `unknown identity provider ${provider}`);
    return { provider, userCode: "WDJB-MJHT", verificationUri: "https://github.com/login/device", expiresInSecs: 900 };
  }

  async identityLoginFinish(provider: string): Promise<string> {
    const login = await new Promise<string>((resolve) => (this.approved = resolve));
    this.loggedIn = `${provider}:${login}`;
    return this.loggedIn;
  }

  /** The person approved the code on the provider's site as `login`. */
  approveLogin(login: string) {
    this.approved?.(login);
  }

  async claimIdentity(provider: string): Promise<LinkedIdentity> {
    if (!this.loggedIn?.startsWith(`${provider}:`)) throw new BackendError("invalid_input", `log in to ${provider} first`);
    const linked = { identity: this.loggedIn, proofUrl: `https://gist.github.com/${this.loggedIn.split(":")[1]}/1`, claimedAt: Math.floor(Date.now() / 1000) };
    this.linked.push(linked);
    return linked;
  }

  async linkedIdentities(): Promise<LinkedIdentity[]> {
    return [...this.linked];
  }
}

function entryOf(secret: SecretDto, favourite: boolean): EntryDto {
  const item = secret.item;
  const kind = item.type;
  const username = item.type === "login" ? item.username : item.type === "card" ? item.cardholder : "";
  const urls = item.type === "login" ? item.urls.filter((u) => u.trim() !== "") : [];
  return { path: secret.path, title: secret.title, kind, username, urls, favourite };
}
