// The one interface through which the UI reaches the node. The Tauri
// implementation calls the Rust commands; tests use `MockBackend`.
import { invoke } from "@tauri-apps/api/core";
import { friendly } from "./errors";
import { listen } from "@tauri-apps/api/event";
import { writeText } from "@tauri-apps/plugin-clipboard-manager";
import type {
  AttachmentDto,
  ApiError,
  ImportPreviewDto,
  ImportReportDto,
  ImportRequestDto,
  BackupDto,
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
  ErrorCode,
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

export interface Backend {
  status(): Promise<StatusDto>;
  createNode(password: string): Promise<CreatedDto>;
  /** Logins whose password is weak, reused or unchanged for a year (never the passwords). */
  passwordHealth(): Promise<HealthItemDto[]>;
  /** Logins whose password is in known breaches (opt-in; refused while off). */
  breachedLogins(): Promise<HealthItemDto[]>;
  /** The name offered for this device at setup: the computer's own. */
  suggestedDeviceName(): Promise<string>;
  /** Name this device; its other devices show the name at their next sync. */
  setDeviceName(name: string): Promise<void>;
  unlock(password: string): Promise<void>;
  lock(): Promise<void>;
  recover(code: string, password: string): Promise<void>;
  /** Change the password (the old one must be right); keyring unlock, if on, follows. */
  changePassword(old: string, next: string): Promise<void>;
  /** The app's version (Settings, About). */
  appVersion(): Promise<string>;
  /** Where this node keeps its files (Settings, About). */
  dataDirectory(): Promise<string>;
  /** Copy non-secret text (a NodeId). */
  copyText(text: string): Promise<void>;

  listVaults(): Promise<VaultDto[]>;
  createVault(name: string): Promise<VaultDto>;
  renameVault(vault: string, newName: string): Promise<void>;
  /** Move a vault to "Recently deleted" on every device (restorable for 30 days). */
  deleteVault(vault: string): Promise<void>;
  /** Vaults in "Recently deleted", newest first. */
  deletedVaults(): Promise<DeletedVaultDto[]>;
  /** Bring a deleted vault back, on every device. */
  restoreDeletedVault(id: string): Promise<VaultDto>;
  /** Secrets deleted recently, each with a version that still holds it. */
  deletedSecrets(): Promise<DeletedSecretDto[]>;
  /** Every secret of a vault with title, kind, user name, websites: no secret field. */
  listEntries(vault: string): Promise<EntryDto[]>;
  setFavourite(vault: string, path: string, favourite: boolean): Promise<void>;
  readSecret(vault: string, path: string, version?: string): Promise<SecretDto>;
  saveSecret(vault: string, secret: SecretDto, isNew: boolean): Promise<string>;
  deleteSecret(vault: string, path: string): Promise<string>;
  /** Move a secret to another name or folder, keeping its history. */
  renameSecret(vault: string, from: string, to: string): Promise<string>;
  secretHistory(vault: string, path: string): Promise<VersionDto[]>;
  restoreSecret(vault: string, path: string, version: string): Promise<string>;
  /** Copy one field of a secret; returns the seconds until the clipboard is cleared. */
  copyField(vault: string, path: string, field: string): Promise<number>;
  totpCode(setting: string): Promise<TotpDto>;
  generatePassword(rules: PasswordRulesDto): Promise<string>;
  generatePassphrase(words: number): Promise<string>;
  passwordStrength(password: string): Promise<StrengthDto>;
  /** Tell the node the user is active, so auto-lock waits. */
  touch(): Promise<void>;
  /** Call `handler` whenever the node locks itself (auto-lock). */
  onLocked(handler: () => void): Promise<void>;

  keyringStatus(): Promise<KeyringStatusDto>;
  /** Check the password and keep its key (never the password) in the OS keyring. */
  enableKeyringUnlock(password: string): Promise<void>;
  disableKeyringUnlock(): Promise<void>;
  unlockWithKeyring(): Promise<void>;

  /** What importing an export would bring in (nothing written). */
  importPreview(request: ImportRequestDto, vault: string): Promise<ImportPreviewDto>;
  /** Let go of what the last preview read (the import wizard closed). */
  importForget(): Promise<void>;
  /** Import an export into a folder of a vault, in one version. */
  importItems(request: ImportRequestDto, vault: string, folder: string): Promise<ImportReportDto>;
  /** Backups on a schedule to a folder, if set up. */
  backupSchedule(): Promise<BackupSchedule | null>;
  /** Back up every vault to `folder` every `everyHours`, keeping `keep`. */
  setBackupSchedule(folder: string, everyHours: number, keep: number, passphrase: string): Promise<BackupSchedule>;
  clearBackupSchedule(): Promise<void>;
  /** Write the scheduled backup now. */
  backUpNow(): Promise<BackupDto>;
  /** Restore the vaults of a backup file. */
  restoreBackup(file: string, passphrase: string): Promise<RestoredDto[]>;

  preferences(): Promise<Preferences>;
  /** Save and apply preferences; a shortcut another app holds is refused. */
  setPreferences(preferences: Preferences): Promise<void>;

  /** Quick access: search every vault. */
  quickSearch(query: string): Promise<QuickItemDto[]>;
  /** Quick access: copy a secret's main field and close the palette. */
  quickCopy(vault: string, path: string): Promise<number>;
  hidePalette(): Promise<void>;
  showMainWindow(): Promise<void>;
  /** Pick a file to attach to the item being edited in `vault` (kept until it
   * is saved); null if cancelled. */
  attachFile(vault: string): Promise<AttachmentDto | null>;
  /** Save attachment `file` of the item at `path` to a file the user picks;
   * null if cancelled. */
  saveAttachment(vault: string, path: string, file: string, version: string | null): Promise<string | null>;
  /** Save a (binary) secret to a file the user picks; null if cancelled. */
  saveSecretFile(vault: string, path: string): Promise<string | null>;
  /** Open an http(s) link in the system browser. */
  openUrl(url: string): Promise<void>;
  /** Call `handler` each time the palette opens. */
  onPaletteOpened(handler: () => void): Promise<void>;

  /** This device and the paired ones. */
  devices(): Promise<DeviceDto[]>;
  /** Open an invitation (QR code, code to paste, words), valid 10 minutes, once. */
  inviteDevice(): Promise<InvitationDto>;
  pairingState(): Promise<PairingStateDto>;
  cancelInvitation(): Promise<void>;
  /** Copy the open invitation's code like a secret (out of clipboard history, cleared after the delay). */
  copyPairingCode(): Promise<number>;
  /** The inviting side: the person compared the digits (`accept`) or cancelled. */
  confirmPairing(accept: boolean): Promise<void>;
  /** Start joining the device showing `code`: returns the digits to compare;
   * nothing is recorded until `confirmJoin`. */
  joinDevice(code: string): Promise<JoinedDto>;
  /** Pick a picture of the other device's QR code and start joining with it; null if cancelled. */
  joinFromQrPicture(): Promise<JoinedDto | null>;
  /** The joining side: the digits match, so finish once the other device
   * confirms too (waits up to the code's expiry); or cancel. */
  confirmJoin(accept: boolean): Promise<void>;
  /** Devices another device added, shown until kept or removed. */
  deviceNotices(): Promise<DeviceNoticeDto[]>;
  /** Devices that removed each other: trusted by neither side here until
   * the person removes the one they do not have. */
  deviceDisputes(): Promise<DeviceDisputeDto[]>;
  /** What removing `device` would change: the devices out that it removed
   * come back unless removed too; devices joined only through it go. */
  removalEffect(device: string): Promise<RemovalEffectDto>;
  /** Keep a device another device added (dismisses its notice). */
  keepDevice(device: string): Promise<void>;
  /** Remove a device from all your devices and refuse it from now on. */
  revokeDevice(device: string): Promise<void>;
  syncStatus(): Promise<SyncStatusDto>;
  conflicts(): Promise<ConflictDto[]>;
  resolveConflict(vault: string, path: string, theirsPath: string, keepTheirs: boolean): Promise<string>;
  /** Call `handler` when the node's contents change (sync, pairing, devices). */
  onNodeChanged(handler: () => void): Promise<void>;

  /** This node's contact code (text and QR code) for another person. */
  contactCode(): Promise<ContactDto>;
  /** The people (other gestalts) trusted here, with what is shared each way. */
  people(): Promise<PersonDto[]>;
  /** Trust a person by contact code, NodeId or identity (github.com:login); their name. */
  addPerson(target: string): Promise<string>;
  /** Stop trusting a person: every share with them ends, both ways. */
  removePerson(name: string): Promise<boolean>;
  /** Allow or disallow "notify" or "scan". */
  setPersonPermission(name: string, permission: "notify" | "scan", allow: boolean): Promise<void>;
  /** How each shared vault is shared. */
  vaultSharing(): Promise<VaultSharingDto[]>;
  /** Share a vault with a person; whether they were told now. */
  shareVault(vault: string, target: string, write: boolean): Promise<boolean>;
  /** Stop sharing a vault with a person (they keep what they have). */
  unshareVault(vault: string, person: string): Promise<boolean>;
  /** Notifications, newest first (reading marks them read). */
  notifications(): Promise<NotificationDto[]>;
  /** Take a vault offered in a notification. */
  acceptShare(vault: string): Promise<VaultDto>;
  /** Decline a vault offered: its offer goes. */
  dismissShare(vault: string): Promise<void>;
  /** The contact code in a picture of a QR code the user picks; null if cancelled. */
  contactFromQrPicture(): Promise<string | null>;
  /** Start linking an account (provider "github.com"): the code to enter and where. */
  identityLoginStart(provider: string): Promise<IdentityLogin>;
  /** Wait until the code is approved; the account, e.g. github.com:alice. */
  identityLoginFinish(provider: string): Promise<string>;
  /** Claim the logged-in account for this node: a public, signed proof. */
  claimIdentity(provider: string): Promise<LinkedIdentity>;
  /** Accounts this node claimed. */
  linkedIdentities(): Promise<LinkedIdentity[]>;
}

/** An error from the node, carrying the stable code the UI branches on; its
 * message is for people (see `friendly`), the node's own text in `detail`. */
export class BackendError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  constructor(code: ErrorCode, message: string) {
    super(friendly(code, message));
    this.code = code;
    this.detail = message;
  }
}

function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === "object" &&
    value !== null &&
    "code" in value &&
    "message" in value
  );
}

export function toBackendError(error: unknown): BackendError {
  if (error instanceof BackendError) return error;
  if (isApiError(error)) return new BackendError(error.code, error.message);
  return new BackendError("internal", String(error));
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toBackendError(error);
  }
}

export const tauriBackend: Backend = {
  status: () => call("status"),
  createNode: (password) => call("create_node", { password }),
  suggestedDeviceName: () => call("suggested_device_name"),
  passwordHealth: () => call("password_health"),
  breachedLogins: () => call("breached_logins"),
  setDeviceName: (name) => call("set_device_name", { name }),
  unlock: (password) => call("unlock", { password }),
  lock: () => call("lock"),
  recover: (code, password) => call("recover", { code, password }),
  changePassword: (old, next) => call("change_password", { old, new: next }),
  appVersion: () => call("app_version"),
  dataDirectory: () => call("data_directory"),
  copyText: (text) => writeText(text),

  listVaults: () => call("list_vaults"),
  createVault: (name) => call("create_vault", { name }),
  renameVault: (vault, newName) => call("rename_vault", { vault, newName }),
  deleteVault: (vault) => call("delete_vault", { vault }),
  deletedVaults: () => call("deleted_vaults"),
  restoreDeletedVault: (id) => call("restore_deleted_vault", { id }),
  deletedSecrets: () => call("deleted_secrets"),
  listEntries: (vault) => call("list_entries", { vault }),
  setFavourite: (vault, path, favourite) => call("set_favourite", { vault, path, favourite }),
  readSecret: (vault, path, version) => call("read_secret", { vault, path, version: version ?? null }),
  saveSecret: (vault, secret, isNew) => call("save_secret", { vault, secret, isNew }),
  deleteSecret: (vault, path) => call("delete_secret", { vault, path }),
  renameSecret: (vault, from, to) => call("rename_secret", { vault, from, to }),
  secretHistory: (vault, path) => call("secret_history", { vault, path }),
  restoreSecret: (vault, path, version) => call("restore_secret", { vault, path, version }),
  copyField: (vault, path, field) => call("copy_field", { vault, path, field }),
  totpCode: (setting) => call("totp_code", { setting }),
  generatePassword: (rules) => call("generate_password", { rules }),
  generatePassphrase: (words) => call("generate_passphrase", { words }),
  passwordStrength: (password) => call("password_strength", { password }),
  touch: () => call("touch"),
  onLocked: async (handler) => {
    await listen("node-locked", handler);
  },
  keyringStatus: () => call("keyring_status"),
  enableKeyringUnlock: (password) => call("enable_keyring_unlock", { password }),
  disableKeyringUnlock: () => call("disable_keyring_unlock"),
  unlockWithKeyring: () => call("unlock_with_keyring"),
  importPreview: (request, vault) => call("import_preview", { request, vault }),
  importItems: (request, vault, folder) => call("import_items", { request, vault, folder }),
  importForget: () => call("import_forget"),
  backupSchedule: () => call("backup_schedule"),
  setBackupSchedule: (folder, everyHours, keep, passphrase) =>
    call("set_backup_schedule", { folder, everyHours, keep, passphrase }),
  clearBackupSchedule: () => call("clear_backup_schedule"),
  backUpNow: () => call("back_up_now"),
  restoreBackup: (file, passphrase) => call("restore_backup", { file, passphrase }),
  preferences: () => call("preferences"),
  setPreferences: (preferences) => call("set_preferences", { preferences }),
  quickSearch: (query) => call("quick_search", { query }),
  quickCopy: (vault, path) => call("quick_copy", { vault, path }),
  hidePalette: () => call("hide_palette"),
  showMainWindow: () => call("show_main_window"),
  saveSecretFile: (vault, path) => call("save_secret_file", { vault, path }),
  attachFile: (vault) => call("attach_file", { vault }),
  saveAttachment: (vault, path, file, version) => call("save_attachment", { vault, path, file, version }),
  openUrl: (url) => call("open_url", { url }),
  onPaletteOpened: async (handler) => {
    await listen("palette-opened", handler);
  },
  devices: () => call("devices"),
  inviteDevice: () => call("invite_device"),
  pairingState: () => call("pairing_state"),
  cancelInvitation: () => call("cancel_invitation"),
  copyPairingCode: () => call("copy_pairing_code"),
  confirmPairing: (accept) => call("confirm_pairing", { accept }),
  joinDevice: (code) => call("join_device", { code }),
  joinFromQrPicture: () => call("join_from_qr_picture"),
  confirmJoin: (accept) => call("confirm_join", { accept }),
  deviceNotices: () => call("device_notices"),
  deviceDisputes: () => call("device_disputes"),
  removalEffect: (device) => call("removal_effect", { device }),
  keepDevice: (device) => call("keep_device", { device }),
  revokeDevice: (device) => call("revoke_device", { device }),
  syncStatus: () => call("sync_status"),
  conflicts: () => call("conflicts"),
  resolveConflict: (vault, path, theirsPath, keepTheirs) =>
    call("resolve_conflict", { vault, path, theirsPath, keepTheirs }),
  onNodeChanged: async (handler) => {
    await listen("node-changed", handler);
  },
  contactCode: () => call("contact_code"),
  people: () => call("people"),
  addPerson: (target) => call("add_person", { target }),
  removePerson: (name) => call("remove_person", { name }),
  setPersonPermission: (name, permission, allow) =>
    call("set_person_permission", { name, permission, allow }),
  vaultSharing: () => call("vault_sharing"),
  shareVault: (vault, target, write) => call("share_vault", { vault, target, write }),
  unshareVault: (vault, person) => call("unshare_vault", { vault, person }),
  notifications: () => call("notifications"),
  acceptShare: (vault) => call("accept_share", { vault }),
  dismissShare: (vault) => call("dismiss_share", { vault }),
  contactFromQrPicture: () => call("contact_from_qr_picture"),
  identityLoginStart: (provider) => call("identity_login_start", { provider }),
  identityLoginFinish: (provider) => call("identity_login_finish", { provider }),
  claimIdentity: (provider) => call("claim_identity", { provider }),
  linkedIdentities: () => call("linked_identities"),
};
