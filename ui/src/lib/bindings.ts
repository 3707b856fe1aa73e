// Generated from polykey-node's api module by `UPDATE_BINDINGS=1 cargo test -p polykey-tests --test tidy`.
// Do not edit by hand.

export type ErrorCode = "already_exists" | "not_initialised" | "in_use" | "wrong_password" | "password_too_short" | "locked" | "already_unlocked" | "invalid_recovery_code" | "recovery_code_mismatch" | "key_file_corrupt" | "wrong_key" | "tampered" | "data_corrupt" | "io" | "internal" | "unknown_vault" | "vault_exists" | "invalid_vault_name" | "invalid_path" | "secret_not_found" | "secret_exists" | "wrong_kind" | "directory_not_empty" | "secret_too_large" | "unknown_version" | "bad_item" | "bad_totp" | "bad_generator_rules" | "keyring_unavailable" | "bad_preference" | "keyring_not_enabled" | "keyring_stale" | "invalid_input" | "network_off" | "network" | "peer_refused" | "pairing_expired" | "pairing_used" | "pairing_wrong_code" | "pairing_failed" | "read_only" | "unknown_target";

export type ApiError = { 
/**
 * What went wrong, for code.
 */
code: ErrorCode, 
/**
 * What went wrong, for people.
 */
message: string, };

export type NodeStateDto = "uninitialised" | "locked" | "unlocked";

export type StatusDto = { 
/**
 * Uninitialised, locked or unlocked.
 */
state: NodeStateDto, 
/**
 * The NodeId (`v…`), known even while locked.
 */
nodeId: string | null, };

export type CreatedDto = { 
/**
 * The new NodeId.
 */
nodeId: string, 
/**
 * The 24 words, shown to the user once.
 */
recoveryCode: string, };

export type SecretDto = { 
/**
 * Where it lives in the vault.
 */
path: string, 
/**
 * What the user calls it (the item title, or the file name).
 */
title: string, 
/**
 * Its fields.
 */
item: ItemDto, 
/**
 * Fields the user added (typed items only).
 */
fields: Array<FieldDto>, 
/**
 * Files attached (typed items only).
 */
attachments: Array<AttachmentDto>, };

export type ItemDto = { "type": "login", 
/**
 * User name or email.
 */
username: string, 
/**
 * The password.
 */
password: string, 
/**
 * Where it is used.
 */
urls: Array<string>, 
/**
 * TOTP setting (otpauth URI or base32), if any.
 */
totp: string | null, 
/**
 * Free text.
 */
notes: string, } | { "type": "secure_note", 
/**
 * The note.
 */
text: string, } | { "type": "card", 
/**
 * Name on the card.
 */
cardholder: string, 
/**
 * Card number.
 */
number: string, 
/**
 * MM/YY.
 */
expiry: string, 
/**
 * Security code.
 */
cvv: string, 
/**
 * Free text.
 */
notes: string, } | { "type": "ssh_key", 
/**
 * OpenSSH private key.
 */
privateKey: string, 
/**
 * Public key line.
 */
publicKey: string, 
/**
 * Passphrase of the private key.
 */
passphrase: string, 
/**
 * Free text.
 */
notes: string, } | { "type": "identity", 
/**
 * Full name.
 */
fullName: string, 
/**
 * Email address.
 */
email: string, 
/**
 * Phone number.
 */
phone: string, 
/**
 * Postal address.
 */
address: string, 
/**
 * Date of birth, `YYYY-MM-DD`.
 */
birthday: string, 
/**
 * Company.
 */
company: string, 
/**
 * Passport, licence or national id number.
 */
idNumber: string, 
/**
 * Free text.
 */
notes: string, } | { "type": "text", 
/**
 * Its contents.
 */
text: string, } | { "type": "binary", 
/**
 * Its size in bytes.
 */
size: number, };

export type VaultDto = { 
/**
 * Permanent id.
 */
id: string, 
/**
 * Name.
 */
name: string, };

export type VersionDto = { 
/**
 * Commit id.
 */
id: string, 
/**
 * NodeId of the author.
 */
author: string, 
/**
 * The author device's name, when it is one of this gestalt's and
 * named itself.
 */
authorName: string | null, 
/**
 * Seconds since the Unix epoch.
 */
time: number, 
/**
 * What changed.
 */
message: string, 
/**
 * Where the secret was in this version, when it has moved since
 * (empty otherwise, and for a vault's own history).
 */
path: string, };

export type TotpDto = { 
/**
 * The digits.
 */
code: string, 
/**
 * Seconds until it changes.
 */
secondsLeft: number, 
/**
 * The step in seconds.
 */
period: number, };

export type PasswordRulesDto = { 
/**
 * Length, 4 to 128.
 */
length: number, 
/**
 * a–z.
 */
lowercase: boolean, 
/**
 * A–Z.
 */
uppercase: boolean, 
/**
 * 0–9.
 */
digits: boolean, 
/**
 * Punctuation.
 */
symbols: boolean, 
/**
 * Leave out look-alike characters.
 */
avoidAmbiguous: boolean, };

export type StrengthDto = { 
/**
 * Estimated entropy, bits.
 */
bits: number, 
/**
 * 0 (very weak) to 4 (very strong).
 */
score: number, };

export type KeyringStatusDto = { 
/**
 * The OS keyring answered.
 */
available: boolean, 
/**
 * A key for this node is stored there.
 */
enabled: boolean, 
/**
 * Why it is unavailable, for the user.
 */
problem: string | null, };

export type EntryKindDto = "login" | "secure_note" | "card" | "ssh_key" | "identity" | "text" | "binary";

export type FieldKindDto = "text" | "hidden" | "url" | "date";

export type FieldDto = { 
/**
 * Its label.
 */
name: string, 
/**
 * How it is shown.
 */
kind: FieldKindDto, 
/**
 * Its value.
 */
value: string, };

export type AttachmentDto = { 
/**
 * The file's name.
 */
name: string, 
/**
 * Its size in bytes.
 */
size: number, 
/**
 * Where its bytes are kept in the vault.
 */
file: string, };

export type EntryDto = { 
/**
 * Where it lives in the vault.
 */
path: string, 
/**
 * Its title.
 */
title: string, 
/**
 * Its kind.
 */
kind: EntryKindDto, 
/**
 * A login's user name, a card's holder; else empty.
 */
username: string, 
/**
 * A login's websites.
 */
urls: Array<string>, 
/**
 * Marked as a favourite on this device.
 */
favourite: boolean, };

export type QuickItemDto = { 
/**
 * The vault's current name.
 */
vault: string, 
/**
 * Where it lives in the vault.
 */
path: string, 
/**
 * Its title.
 */
title: string, 
/**
 * A login's user name, if any.
 */
username: string, 
/**
 * Its kind.
 */
kind: EntryKindDto, 
/**
 * Marked as a favourite on this device.
 */
favourite: boolean, };

export type Preferences = { 
/**
 * Lock after this many idle seconds; 0 never locks on its own.
 */
autoLockSecs: number, 
/**
 * Clear a copied secret from the clipboard after this many seconds.
 */
clipboardClearSecs: number, 
/**
 * The global shortcut for quick access (Tauri's accelerator syntax,
 * e.g. `CommandOrControl+Shift+Space`); empty for none.
 */
shortcut: string, 
/**
 * Show the system tray icon.
 */
tray: boolean, 
/**
 * Check passwords against known breaches when asked (off until the
 * user turns it on: it asks a service on the internet).
 */
breachCheck: boolean, 
/**
 * Where the breach check asks: a range API taking the first five hex
 * characters of a SHA-1 after this prefix. https, or http to this
 * computer only.
 */
breachEndpoint: string, };

export type DeviceDto = { 
/**
 * Its NodeId.
 */
nodeId: string, 
/**
 * This device.
 */
thisDevice: boolean, 
/**
 * Connected now.
 */
online: boolean, 
/**
 * Last connected, ms since the epoch (0: never).
 */
lastSeen: number, 
/**
 * Where it was reachable.
 */
addresses: Array<string>, 
/**
 * The name it gave itself ("Laptop"), if any.
 */
name: string | null, };

export type HealthItemDto = { 
/**
 * The vault's name.
 */
vault: string, 
/**
 * Where it lives in the vault.
 */
path: string, 
/**
 * Its title.
 */
title: string, 
/**
 * Its user name.
 */
username: string, 
/**
 * The password's strength, 0 (very weak) to 4.
 */
score: number, 
/**
 * Weak: below "Strong".
 */
weak: boolean, 
/**
 * How many other logins use the same password.
 */
reused: number, 
/**
 * When the secret last changed (seconds since the epoch; 0: over a
 * year ago or not known).
 */
changed: number, 
/**
 * Unchanged for over a year.
 */
old: boolean, 
/**
 * How often the password appears in known breaches (only from the
 * breach check; 0 otherwise).
 */
breached: number, };

export type InvitationDto = { 
/**
 * The whole code (what the QR code holds), to paste.
 */
code: string, 
/**
 * The four words to type.
 */
words: string, 
/**
 * Expiry, seconds since the epoch.
 */
expiresAt: number, 
/**
 * The QR code as an SVG document.
 */
qrSvg: string, };

export type PairingStateDto = { "state": "idle" } | { "state": "waiting", 
/**
 * Expiry, seconds since the epoch.
 */
expiresAt: number, } | { "state": "confirming", 
/**
 * Its NodeId.
 */
device: string, 
/**
 * The digits both screens show.
 */
fingerprint: string, } | { "state": "paired", 
/**
 * Its NodeId.
 */
device: string, 
/**
 * The digits both screens show.
 */
fingerprint: string, } | { "state": "failed", 
/**
 * Why.
 */
message: string, };

export type JoinedDto = { 
/**
 * The device being joined.
 */
device: string, 
/**
 * The digits both screens show.
 */
fingerprint: string, };

export type DeviceNoticeDto = { 
/**
 * The new device's NodeId.
 */
device: string, 
/**
 * The device that added it (the link's issuer).
 */
addedBy: string, 
/**
 * When the link was issued, ms since the epoch.
 */
addedAt: number, };

export type DeviceDisputeDto = { 
/**
 * The device's NodeId.
 */
device: string, 
/**
 * The name it gave itself, if known.
 */
name: string | null, 
/**
 * The devices in the dispute that removed it.
 */
removedBy: Array<string>, 
/**
 * When the latest of them did, ms since the epoch.
 */
at: number, };

export type RemovedDeviceDto = { 
/**
 * The device's NodeId.
 */
device: string, 
/**
 * The name it gave itself, if known.
 */
name: string | null, 
/**
 * Whether it is in a dispute now.
 */
disputed: boolean, };

export type RemovalEffectDto = { 
/**
 * Devices out that would come back unless removed too.
 */
back: Array<RemovedDeviceDto>, 
/**
 * Devices that would go with it (joined only through it).
 */
going: Array<RemovedDeviceDto>, };

export type DeletedVaultDto = { 
/**
 * Its permanent id (what `restore_deleted_vault` takes).
 */
id: string, 
/**
 * Its name when deleted.
 */
name: string, 
/**
 * When it was deleted, ms since the epoch.
 */
deletedAt: number, 
/**
 * The device that deleted it (NodeId).
 */
deletedBy: string, 
/**
 * When this device frees its space for good, ms since the epoch.
 */
purgeAt: number, };

export type ImportRequestDto = { 
/**
 * `csv`, `bitwarden`, `1pux`, `pass` or `keepass`.
 */
source: string, 
/**
 * The file (or folder).
 */
file: string, 
/**
 * Which column holds what, for a CSV (a column by its name, or by
 * its place: `#1` the first).
 */
mapping: string | null, 
/**
 * The CSV has no header row: its first row is an entry, and the
 * mapping names columns by place.
 */
noHeader: boolean | null, 
/**
 * The export's password.
 */
password: string | null, 
/**
 * A KeePass database's key file.
 */
keyFile: string | null, 
/**
 * What to do with a login whose website and user name a login in
 * the vault has: `keep` both (the default), `skip` it, or `replace`
 * the one in the vault.
 */
duplicates: string | null, };

export type KindCountDto = { 
/**
 * `login`, `note`, `card` or `SSH key`.
 */
kind: string, 
/**
 * How many.
 */
count: number, };

export type PreviewItemDto = { 
/**
 * Its title.
 */
title: string, 
/**
 * Its kind.
 */
kind: string, 
/**
 * Its folder in the export, `/`-separated.
 */
folder: string, 
/**
 * A login's user name.
 */
username: string, 
/**
 * A login's first website.
 */
url: string, };

export type SkippedDto = { 
/**
 * Its line (CSV) or entry number.
 */
row: number, 
/**
 * Why.
 */
reason: string, };

export type ImportPreviewDto = { 
/**
 * The program the export came from, as recognised.
 */
source: string, 
/**
 * Items to import.
 */
total: number, 
/**
 * Items by kind.
 */
counts: Array<KindCountDto>, 
/**
 * The first few items.
 */
first: Array<PreviewItemDto>, 
/**
 * The first hundred rows or entries left out.
 */
skipped: Array<SkippedDto>, 
/**
 * How many are left out in all.
 */
skippedTotal: number, 
/**
 * A CSV whose columns are not known: say which holds what.
 */
needsMapping: boolean, 
/**
 * Its column names, for the mapping.
 */
columns: Array<string>, 
/**
 * Why it needs a mapping (or why the mapping does not fit).
 */
problem: string | null, 
/**
 * A protected export: its password is needed.
 */
needsPassword: boolean, 
/**
 * Logins whose website and user name a login in the vault has.
 */
duplicates: number, 
/**
 * The first of them: each title with the path of the login here it
 * is the same as (what "replace" overwrites), as `Title (here: path)`.
 */
duplicateTitles: Array<string>, };

export type ImportReportDto = { 
/**
 * The program the export came from.
 */
source: string, 
/**
 * Items written (new, or replacing one in the vault).
 */
imported: number, 
/**
 * Of them, those that replaced a login in the vault.
 */
replaced: number, 
/**
 * Logins left out as already in the vault.
 */
skippedDuplicates: number, 
/**
 * Rows or entries left out.
 */
skippedTotal: number, 
/**
 * The vault's new version (one commit), if anything was written.
 */
version: string | null, };

export type BackupVaultDto = { 
/**
 * Its name when backed up.
 */
name: string, 
/**
 * Its permanent id.
 */
id: string, 
/**
 * How many objects (versions, folders, secrets) of its history.
 */
objects: number, };

export type BackupDto = { 
/**
 * When it was made, seconds since the epoch.
 */
createdAt: number, 
/**
 * The node that made it.
 */
node: string, 
/**
 * Its vaults.
 */
vaults: Array<BackupVaultDto>, 
/**
 * Its size in bytes (0 when read back).
 */
bytes: number, };

export type RestoredDto = { 
/**
 * The vault's name here.
 */
name: string, 
/**
 * `restored` (it was not here), `beside` (it is here in another
 * state: the backup's came back as this new vault) or `unchanged`.
 */
how: string, };

export type BackupSchedule = { 
/**
 * The folder backups are written to.
 */
folder: string, 
/**
 * Hours between two backups.
 */
everyHours: number, 
/**
 * How many backups are kept there (the oldest removed).
 */
keep: number, 
/**
 * The last backup written, seconds since the epoch.
 */
lastSuccess: number | null, 
/**
 * Its file name.
 */
lastFile: string | null, 
/**
 * Why the last attempt failed, if it did (cleared by a success).
 */
lastError: string | null, 
/**
 * When the next one is due, seconds since the epoch.
 */
nextDue: number, };

export type DeletedSecretDto = { 
/**
 * The vault's name.
 */
vault: string, 
/**
 * The secret's path.
 */
path: string, 
/**
 * When it was deleted, ms since the epoch.
 */
deletedAt: number, 
/**
 * A version that still holds it.
 */
version: string, };

export type SyncStatusDto = { 
/**
 * Syncing now.
 */
syncing: boolean, 
/**
 * Last finished sync, ms since the epoch (0: never).
 */
lastSync: number, 
/**
 * The last error, for the user.
 */
lastError: string | null, 
/**
 * Devices of the gestalt connected now.
 */
online: number, 
/**
 * Secrets with two versions kept after a conflict, in every vault.
 */
conflicts: number, };

export type ConflictDto = { 
/**
 * The vault.
 */
vault: string, 
/**
 * The secret (this device's version, or the merged one).
 */
path: string, 
/**
 * The other device's version, kept beside it.
 */
theirsPath: string, };

export type SharedVaultDto = { 
/**
 * The vault's id.
 */
id: string, 
/**
 * Its name here.
 */
name: string, 
/**
 * Whether the gestalt it is shared with may write.
 */
write: boolean, 
/**
 * The owner stopped sharing it (a copy shared with this gestalt).
 */
ended: boolean, };

export type PersonDto = { 
/**
 * As added: an identity (`github.com:alice`) or a NodeId.
 */
name: string, 
/**
 * Their nodes known here.
 */
nodes: Array<string>, 
/**
 * May send this node notifications (share offers among them).
 */
notify: boolean, 
/**
 * May list what is shared with them.
 */
scan: boolean, 
/**
 * When trusted, seconds since the epoch.
 */
trustedAt: number, 
/**
 * What this gestalt shares with them.
 */
sharedWithThem: Array<SharedVaultDto>, 
/**
 * What they share with this gestalt.
 */
sharedWithMe: Array<SharedVaultDto>, };

export type GrantDto = { 
/**
 * The person, as trusted.
 */
person: string, 
/**
 * Whether they may write.
 */
write: boolean, };

export type VaultSharingDto = { 
/**
 * The vault's id.
 */
id: string, 
/**
 * Its name here.
 */
name: string, 
/**
 * Whose vault it is, when another person's.
 */
owner: string | null, 
/**
 * Whether this gestalt may write to it.
 */
write: boolean, 
/**
 * The owner stopped sharing it.
 */
ended: boolean, 
/**
 * The people this gestalt shares it with.
 */
grants: Array<GrantDto>, };

export type ShareOfferDto = { 
/**
 * The vault's id.
 */
vault: string, 
/**
 * The owner's name for it.
 */
name: string, 
/**
 * Whether this gestalt may write.
 */
write: boolean, 
/**
 * Taken already (the vault is here).
 */
accepted: boolean, };

export type NotificationDto = { 
/**
 * The sending node.
 */
from: string, 
/**
 * The person it belongs to, when trusted here.
 */
person: string | null, 
/**
 * When sent, ms since the epoch.
 */
sentAt: number, 
/**
 * The message.
 */
text: string, 
/**
 * Read before this listing.
 */
read: boolean, 
/**
 * A vault offered with it.
 */
share: ShareOfferDto | null, };

export type ContactDto = { 
/**
 * `polykey-contact:…`
 */
code: string, 
/**
 * The same as a QR code (SVG).
 */
qrSvg: string, };

export type IdentityLogin = { 
/**
 * The provider, e.g. `github.com`.
 */
provider: string, 
/**
 * The code to enter.
 */
userCode: string, 
/**
 * Where to enter it.
 */
verificationUri: string, 
/**
 * How long the code stays valid, in seconds.
 */
expiresInSecs: number, };

export type LinkedIdentity = { 
/**
 * `provider:login`, e.g. `github.com:alice`.
 */
identity: string, 
/**
 * Where the claim is posted for anyone to read.
 */
proofUrl: string, 
/**
 * When it was claimed, seconds since the Unix epoch.
 */
claimedAt: number, };
