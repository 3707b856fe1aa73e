use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::NodeError;

/// Stable, serializable error codes: the UI branches on these, never on text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A node already exists here.
    AlreadyExists,
    /// No node has been created here.
    NotInitialised,
    /// Another process holds the node.
    InUse,
    /// The password is wrong.
    WrongPassword,
    /// The new password is too short.
    PasswordTooShort,
    /// The node is locked.
    Locked,
    /// The node is already unlocked.
    AlreadyUnlocked,
    /// The recovery code is malformed.
    InvalidRecoveryCode,
    /// The recovery code belongs to another node.
    RecoveryCodeMismatch,
    /// The key file is damaged.
    KeyFileCorrupt,
    /// The store is sealed to another key.
    WrongKey,
    /// A stored record was altered.
    Tampered,
    /// The store is damaged or not Polykey's.
    DataCorrupt,
    /// A file operation failed.
    Io,
    /// A bug.
    Internal,
    /// No vault by that name.
    UnknownVault,
    /// A vault by that name exists.
    VaultExists,
    /// The vault name is not acceptable.
    InvalidVaultName,
    /// The secret path is not acceptable.
    InvalidPath,
    /// Nothing at that path.
    SecretNotFound,
    /// Something already at that path.
    SecretExists,
    /// A secret where a directory was expected, or the reverse.
    WrongKind,
    /// The directory is not empty.
    DirectoryNotEmpty,
    /// The secret is over the size limit.
    SecretTooLarge,
    /// No such version.
    UnknownVersion,
    /// An item is damaged, newer, or has no such field.
    BadItem,
    /// A TOTP setting is invalid.
    BadTotp,
    /// Generator settings cannot be met.
    BadGeneratorRules,
    /// The OS keyring cannot be reached.
    KeyringUnavailable,
    /// A preference is out of bounds.
    BadPreference,
    /// Keyring unlock is not turned on.
    KeyringNotEnabled,
    /// The keyring's key no longer fits.
    KeyringStale,
    /// Input that cannot be used.
    InvalidInput,
    /// The network is not running.
    NetworkOff,
    /// Another device could not be reached or the exchange failed.
    Network,
    /// Another device refused, or sent data that failed a check.
    PeerRefused,
    /// The pairing code expired.
    PairingExpired,
    /// The pairing code was used already (or tried too often).
    PairingUsed,
    /// The pairing words do not match.
    PairingWrongCode,
    /// Pairing failed otherwise.
    PairingFailed,
    /// Another person's vault, shared to read only.
    ReadOnly,
    /// No such person, node or account is known here or at its provider.
    UnknownTarget,
}

/// Whether keyring unlock can be used and is on.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct KeyringStatusDto {
    /// The OS keyring answered.
    pub available: bool,
    /// A key for this node is stored there.
    pub enabled: bool,
    /// Why it is unavailable, for the user.
    pub problem: Option<String>,
}

/// An error as the UI receives it.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
pub struct ApiError {
    /// What went wrong, for code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        let code = error.code();
        Self {
            code,
            message: error.to_string(),
        }
    }
}

/// Whether a node exists here and whether it is unlocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum NodeStateDto {
    /// No node yet: first run.
    Uninitialised,
    /// A node exists and is locked.
    Locked,
    /// The node is unlocked.
    Unlocked,
}

/// The node's status as the UI receives it.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatusDto {
    /// Uninitialised, locked or unlocked.
    pub state: NodeStateDto,
    /// The NodeId (`v…`), known even while locked.
    pub node_id: Option<String>,
}

/// What the UI receives once after creating a node.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDto {
    /// The new NodeId.
    pub node_id: String,
    /// The 24 words, shown to the user once.
    pub recovery_code: String,
}

impl std::fmt::Debug for CreatedDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreatedDto({}, <redacted>)", self.node_id)
    }
}

impl Drop for CreatedDto {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.recovery_code);
    }
}

/// A secret as the UI shows and edits it.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SecretDto {
    /// Where it lives in the vault.
    pub path: String,
    /// What the user calls it (the item title, or the file name).
    pub title: String,
    /// Its fields.
    pub item: ItemDto,
    /// Fields the user added (typed items only).
    #[serde(default)]
    pub fields: Vec<FieldDto>,
    /// Files attached (typed items only).
    #[serde(default)]
    pub attachments: Vec<AttachmentDto>,
}

/// How a custom field is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FieldKindDto {
    /// Plain text.
    Text,
    /// Hidden until shown.
    Hidden,
    /// A link.
    Url,
    /// A date, `YYYY-MM-DD`.
    Date,
}

/// A custom field of an item.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldDto {
    /// Its label.
    pub name: String,
    /// How it is shown.
    pub kind: FieldKindDto,
    /// Its value.
    pub value: String,
}

/// A file attached to an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentDto {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    #[ts(type = "number")]
    pub size: u64,
    /// Where its bytes are kept in the vault.
    pub file: String,
}

impl std::fmt::Debug for SecretDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretDto({}, <redacted>)", self.path)
    }
}

/// A secret's fields: a typed item, plain text, or binary.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ItemDto {
    /// A login.
    Login {
        /// User name or email.
        username: String,
        /// The password.
        password: String,
        /// Where it is used.
        urls: Vec<String>,
        /// TOTP setting (otpauth URI or base32), if any.
        totp: Option<String>,
        /// Free text.
        notes: String,
    },
    /// Free text.
    SecureNote {
        /// The note.
        text: String,
    },
    /// A payment card.
    Card {
        /// Name on the card.
        cardholder: String,
        /// Card number.
        number: String,
        /// MM/YY.
        expiry: String,
        /// Security code.
        cvv: String,
        /// Free text.
        notes: String,
    },
    /// An SSH key pair.
    SshKey {
        /// OpenSSH private key.
        private_key: String,
        /// Public key line.
        public_key: String,
        /// Passphrase of the private key.
        passphrase: String,
        /// Free text.
        notes: String,
    },
    /// A person's details.
    Identity {
        /// Full name.
        full_name: String,
        /// Email address.
        email: String,
        /// Phone number.
        phone: String,
        /// Postal address.
        address: String,
        /// Date of birth, `YYYY-MM-DD`.
        birthday: String,
        /// Company.
        company: String,
        /// Passport, licence or national id number.
        id_number: String,
        /// Free text.
        notes: String,
    },
    /// A plain secret that is text.
    Text {
        /// Its contents.
        text: String,
    },
    /// A plain secret that is not text.
    Binary {
        /// Its size in bytes.
        #[ts(type = "number")]
        size: u64,
    },
}

/// What kind of secret an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum EntryKindDto {
    /// A login.
    Login,
    /// A secure note.
    SecureNote,
    /// A payment card.
    Card,
    /// An SSH key.
    SshKey,
    /// A person's details.
    Identity,
    /// Plain text.
    Text,
    /// Not text.
    Binary,
}

/// A secret as listed and searched: what it is called and where it is
/// used, never its secret fields.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EntryDto {
    /// Where it lives in the vault.
    pub path: String,
    /// Its title.
    pub title: String,
    /// Its kind.
    pub kind: EntryKindDto,
    /// A login's user name, a card's holder; else empty.
    pub username: String,
    /// A login's websites.
    pub urls: Vec<String>,
    /// Marked as a favourite on this device.
    pub favourite: bool,
}

/// A secret offered for quick copy (tray, quick-access palette).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuickItemDto {
    /// The vault's current name.
    pub vault: String,
    /// Where it lives in the vault.
    pub path: String,
    /// Its title.
    pub title: String,
    /// A login's user name, if any.
    pub username: String,
    /// Its kind.
    pub kind: EntryKindDto,
    /// Marked as a favourite on this device.
    pub favourite: bool,
}

/// A vault as listed.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VaultDto {
    /// Permanent id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// One version in a vault's history.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VersionDto {
    /// Commit id.
    pub id: String,
    /// NodeId of the author.
    pub author: String,
    /// The author device's name, when it is one of this gestalt's and
    /// named itself.
    pub author_name: Option<String>,
    /// Seconds since the Unix epoch.
    #[ts(type = "number")]
    pub time: i64,
    /// What changed.
    pub message: String,
    /// Where the secret was in this version, when it has moved since
    /// (empty otherwise, and for a vault's own history).
    pub path: String,
}

impl From<polykey_vaults::VaultInfo> for VaultDto {
    fn from(info: polykey_vaults::VaultInfo) -> Self {
        Self {
            id: info.id.to_string(),
            name: info.name,
        }
    }
}

impl From<polykey_vaults::CommitInfo> for VersionDto {
    fn from(info: polykey_vaults::CommitInfo) -> Self {
        Self {
            id: info.id,
            author: info.author,
            author_name: None,
            time: info.time,
            message: info.message,
            path: String::new(),
        }
    }
}

/// A TOTP code.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TotpDto {
    /// The digits.
    pub code: String,
    /// Seconds until it changes.
    #[ts(type = "number")]
    pub seconds_left: u64,
    /// The step in seconds.
    #[ts(type = "number")]
    pub period: u64,
}

/// What a generated password may contain.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRulesDto {
    /// Length, 4 to 128.
    pub length: u32,
    /// a–z.
    pub lowercase: bool,
    /// A–Z.
    pub uppercase: bool,
    /// 0–9.
    pub digits: bool,
    /// Punctuation.
    pub symbols: bool,
    /// Leave out look-alike characters.
    pub avoid_ambiguous: bool,
}

/// A strength estimate.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StrengthDto {
    /// Estimated entropy, bits.
    pub bits: u32,
    /// 0 (very weak) to 4 (very strong).
    pub score: u8,
}

/// A login whose password needs attention (never the password itself).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HealthItemDto {
    /// The vault's name.
    pub vault: String,
    /// Where it lives in the vault.
    pub path: String,
    /// Its title.
    pub title: String,
    /// Its user name.
    pub username: String,
    /// The password's strength, 0 (very weak) to 4.
    pub score: u8,
    /// Weak: below "Strong".
    pub weak: bool,
    /// How many other logins use the same password.
    pub reused: u32,
    /// When the secret last changed (seconds since the epoch; 0: over a
    /// year ago or not known).
    #[ts(type = "number")]
    pub changed: i64,
    /// Unchanged for over a year.
    pub old: bool,
    /// How often the password appears in known breaches (only from the
    /// breach check; 0 otherwise).
    #[ts(type = "number")]
    pub breached: u64,
}

/// A device of this gestalt, for the Devices page.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDto {
    /// Its NodeId.
    pub node_id: String,
    /// This device.
    pub this_device: bool,
    /// Connected now.
    pub online: bool,
    /// Last connected, ms since the epoch (0: never).
    #[ts(type = "number")]
    pub last_seen: i64,
    /// Where it was reachable.
    pub addresses: Vec<String>,
    /// The name it gave itself ("Laptop"), if any.
    pub name: Option<String>,
}

/// An invitation to show: as a QR code, as text, and as four words.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InvitationDto {
    /// The whole code (what the QR code holds), to paste.
    pub code: String,
    /// The four words to type.
    pub words: String,
    /// Expiry, seconds since the epoch.
    #[ts(type = "number")]
    pub expires_at: u64,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for InvitationDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationDto(<redacted>)")
    }
}

impl From<&polykey_gestalts::pairing::Invitation> for InvitationDto {
    fn from(invitation: &polykey_gestalts::pairing::Invitation) -> Self {
        let code = invitation.to_code();
        let qr_svg = qr_svg(&code);
        Self {
            code,
            words: invitation.words().to_owned(),
            expires_at: invitation.expires_at,
            qr_svg,
        }
    }
}

/// What became of the invitation this device shows.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum PairingStateDto {
    /// None open.
    Idle,
    /// Waiting for the new device.
    #[serde(rename_all = "camelCase")]
    Waiting {
        /// Expiry, seconds since the epoch.
        #[ts(type = "number")]
        expires_at: u64,
    },
    /// A device proved it holds the code: both screens show these digits,
    /// and nothing is recorded until the person confirms they match
    /// (`confirm_pairing`).
    Confirming {
        /// Its NodeId.
        device: String,
        /// The digits both screens show.
        fingerprint: String,
    },
    /// A device joined.
    Paired {
        /// Its NodeId.
        device: String,
        /// The digits both screens show.
        fingerprint: String,
    },
    /// It failed or expired.
    Failed {
        /// Why.
        message: String,
    },
}

/// The joining side after the key agreement: the digits to compare. Nothing
/// is recorded until the person confirms they match (`confirm_join`).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinedDto {
    /// The device being joined.
    pub device: String,
    /// The digits both screens show.
    pub fingerprint: String,
}

/// A device that another device of this gestalt added: shown at once, to
/// keep or remove.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNoticeDto {
    /// The new device's NodeId.
    pub device: String,
    /// The device that added it (the link's issuer).
    pub added_by: String,
    /// When the link was issued, ms since the epoch.
    #[ts(type = "number")]
    pub added_at: i64,
}

/// A device out on this device because devices removed each other:
/// Polykey cannot tell the user's removal from a thief's answer, so it
/// trusts neither until the user removes, here, the one they distrust.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDisputeDto {
    /// The device's NodeId.
    pub device: String,
    /// The name it gave itself, if known.
    pub name: Option<String>,
    /// The devices in the dispute that removed it.
    pub removed_by: Vec<String>,
    /// When the latest of them did, ms since the epoch.
    #[ts(type = "number")]
    pub at: i64,
}

/// A device that removing another would bring back or take out (see
/// `Node::removal_effect`).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemovedDeviceDto {
    /// The device's NodeId.
    pub device: String,
    /// The name it gave itself, if known.
    pub name: Option<String>,
    /// Whether it is in a dispute now.
    pub disputed: bool,
}

/// What removing a device would change (see `Node::removal_effect`).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemovalEffectDto {
    /// Devices out that would come back unless removed too.
    pub back: Vec<RemovedDeviceDto>,
    /// Devices that would go with it (joined only through it).
    pub going: Vec<RemovedDeviceDto>,
}

/// An export to import: what made it, its file (for `pass`, the store's
/// folder), a column mapping for a CSV not recognised
/// (`title=Name,password=Pass`), the password of a protected export.
#[derive(Clone, Debug, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequestDto {
    /// `csv`, `bitwarden`, `1pux`, `pass` or `keepass`.
    pub source: String,
    /// The file (or folder).
    pub file: String,
    /// Which column holds what, for a CSV (a column by its name, or by
    /// its place: `#1` the first).
    pub mapping: Option<String>,
    /// The CSV has no header row: its first row is an entry, and the
    /// mapping names columns by place.
    pub no_header: Option<bool>,
    /// The export's password.
    pub password: Option<String>,
    /// A KeePass database's key file.
    pub key_file: Option<String>,
    /// What to do with a login whose website and user name a login in
    /// the vault has: `keep` both (the default), `skip` it, or `replace`
    /// the one in the vault.
    pub duplicates: Option<String>,
}

/// How many items of one kind an export holds.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct KindCountDto {
    /// `login`, `note`, `card` or `SSH key`.
    pub kind: String,
    /// How many.
    pub count: usize,
}

/// An item as a preview shows it (no secret field).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PreviewItemDto {
    /// Its title.
    pub title: String,
    /// Its kind.
    pub kind: String,
    /// Its folder in the export, `/`-separated.
    pub folder: String,
    /// A login's user name.
    pub username: String,
    /// A login's first website.
    pub url: String,
}

/// A row or entry an import leaves out.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SkippedDto {
    /// Its line (CSV) or entry number.
    pub row: usize,
    /// Why.
    pub reason: String,
}

/// What an import would bring in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportPreviewDto {
    /// The program the export came from, as recognised.
    pub source: String,
    /// Items to import.
    pub total: usize,
    /// Items by kind.
    pub counts: Vec<KindCountDto>,
    /// The first few items.
    pub first: Vec<PreviewItemDto>,
    /// The first hundred rows or entries left out.
    pub skipped: Vec<SkippedDto>,
    /// How many are left out in all.
    pub skipped_total: usize,
    /// A CSV whose columns are not known: say which holds what.
    pub needs_mapping: bool,
    /// Its column names, for the mapping.
    pub columns: Vec<String>,
    /// Why it needs a mapping (or why the mapping does not fit).
    pub problem: Option<String>,
    /// A protected export: its password is needed.
    pub needs_password: bool,
    /// Logins whose website and user name a login in the vault has.
    pub duplicates: usize,
    /// The first of them: each title with the path of the login here it
    /// is the same as (what "replace" overwrites), as `Title (here: path)`.
    pub duplicate_titles: Vec<String>,
}

/// What an import did.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportReportDto {
    /// The program the export came from.
    pub source: String,
    /// Items written (new, or replacing one in the vault).
    pub imported: usize,
    /// Of them, those that replaced a login in the vault.
    pub replaced: usize,
    /// Logins left out as already in the vault.
    pub skipped_duplicates: usize,
    /// Rows or entries left out.
    pub skipped_total: usize,
    /// The vault's new version (one commit), if anything was written.
    pub version: Option<String>,
}

/// One vault of an encrypted backup.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BackupVaultDto {
    /// Its name when backed up.
    pub name: String,
    /// Its permanent id.
    pub id: String,
    /// How many objects (versions, folders, secrets) of its history.
    pub objects: usize,
}

/// An encrypted backup: written, or read back with its passphrase.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BackupDto {
    /// When it was made, seconds since the epoch.
    #[ts(type = "number")]
    pub created_at: u64,
    /// The node that made it.
    pub node: String,
    /// Its vaults.
    pub vaults: Vec<BackupVaultDto>,
    /// Its size in bytes (0 when read back).
    #[ts(type = "number")]
    pub bytes: u64,
}

/// How a vault of a backup came back.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RestoredDto {
    /// The vault's name here.
    pub name: String,
    /// `restored` (it was not here), `beside` (it is here in another
    /// state: the backup's came back as this new vault) or `unchanged`.
    pub how: String,
}

/// A vault in "Recently deleted": restorable until `purge_at`.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeletedVaultDto {
    /// Its permanent id (what `restore_deleted_vault` takes).
    pub id: String,
    /// Its name when deleted.
    pub name: String,
    /// When it was deleted, ms since the epoch.
    #[ts(type = "number")]
    pub deleted_at: i64,
    /// The device that deleted it (NodeId).
    pub deleted_by: String,
    /// When this device frees its space for good, ms since the epoch.
    #[ts(type = "number")]
    pub purge_at: i64,
}

/// A secret deleted recently: restore it from `version` with
/// `restore_secret`.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeletedSecretDto {
    /// The vault's name.
    pub vault: String,
    /// The secret's path.
    pub path: String,
    /// When it was deleted, ms since the epoch.
    #[ts(type = "number")]
    pub deleted_at: i64,
    /// A version that still holds it.
    pub version: String,
}

/// The sync indicator.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusDto {
    /// Syncing now.
    pub syncing: bool,
    /// Last finished sync, ms since the epoch (0: never).
    #[ts(type = "number")]
    pub last_sync: i64,
    /// The last error, for the user.
    pub last_error: Option<String>,
    /// Devices of the gestalt connected now.
    pub online: u32,
    /// Secrets with two versions kept after a conflict, in every vault.
    pub conflicts: u32,
}

/// A secret edited on two devices at once: both versions are kept.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConflictDto {
    /// The vault.
    pub vault: String,
    /// The secret (this device's version, or the merged one).
    pub path: String,
    /// The other device's version, kept beside it.
    pub theirs_path: String,
}

/// A vault shared with a person, or by one.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SharedVaultDto {
    /// The vault's id.
    pub id: String,
    /// Its name here.
    pub name: String,
    /// Whether the gestalt it is shared with may write.
    pub write: bool,
    /// The owner stopped sharing it (a copy shared with this gestalt).
    pub ended: bool,
}

/// Another person (gestalt) trusted here, for the People page.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PersonDto {
    /// As added: an identity (`github.com:alice`) or a NodeId.
    pub name: String,
    /// Their nodes known here.
    pub nodes: Vec<String>,
    /// May send this node notifications (share offers among them).
    pub notify: bool,
    /// May list what is shared with them.
    pub scan: bool,
    /// When trusted, seconds since the epoch.
    #[ts(type = "number")]
    pub trusted_at: u64,
    /// What this gestalt shares with them.
    pub shared_with_them: Vec<SharedVaultDto>,
    /// What they share with this gestalt.
    pub shared_with_me: Vec<SharedVaultDto>,
}

/// One person a vault is shared with.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GrantDto {
    /// The person, as trusted.
    pub person: String,
    /// Whether they may write.
    pub write: bool,
}

/// How a vault is shared, for the sidebar and the Share dialog.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VaultSharingDto {
    /// The vault's id.
    pub id: String,
    /// Its name here.
    pub name: String,
    /// Whose vault it is, when another person's.
    pub owner: Option<String>,
    /// Whether this gestalt may write to it.
    pub write: bool,
    /// The owner stopped sharing it.
    pub ended: bool,
    /// The people this gestalt shares it with.
    pub grants: Vec<GrantDto>,
}

/// A vault offered in a notification.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ShareOfferDto {
    /// The vault's id.
    pub vault: String,
    /// The owner's name for it.
    pub name: String,
    /// Whether this gestalt may write.
    pub write: bool,
    /// Taken already (the vault is here).
    pub accepted: bool,
}

/// A notification, for the notifications panel.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDto {
    /// The sending node.
    pub from: String,
    /// The person it belongs to, when trusted here.
    pub person: Option<String>,
    /// When sent, ms since the epoch.
    #[ts(type = "number")]
    pub sent_at: i64,
    /// The message.
    pub text: String,
    /// Read before this listing.
    pub read: bool,
    /// A vault offered with it.
    pub share: Option<ShareOfferDto>,
}

/// This node's contact code, to give another person (no secret in it).
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ContactDto {
    /// `polykey-contact:…`
    pub code: String,
    /// The same as a QR code (SVG).
    pub qr_svg: String,
}

/// A QR code of `text`, as SVG (empty if it does not fit).
pub(crate) fn qr_svg(text: &str) -> String {
    qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map(|qr| {
            qr.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default()
}

/// The TypeScript declarations of every transport type, in one module, as
/// committed in `ui/src/lib/bindings.ts`.
pub fn typescript_bindings() -> String {
    let cfg = ts_rs::Config::default();
    let decls = [
        ErrorCode::decl(&cfg),
        ApiError::decl(&cfg),
        NodeStateDto::decl(&cfg),
        StatusDto::decl(&cfg),
        CreatedDto::decl(&cfg),
        SecretDto::decl(&cfg),
        ItemDto::decl(&cfg),
        VaultDto::decl(&cfg),
        VersionDto::decl(&cfg),
        TotpDto::decl(&cfg),
        PasswordRulesDto::decl(&cfg),
        StrengthDto::decl(&cfg),
        KeyringStatusDto::decl(&cfg),
        EntryKindDto::decl(&cfg),
        FieldKindDto::decl(&cfg),
        FieldDto::decl(&cfg),
        AttachmentDto::decl(&cfg),
        EntryDto::decl(&cfg),
        QuickItemDto::decl(&cfg),
        crate::preferences::Preferences::decl(&cfg),
        DeviceDto::decl(&cfg),
        HealthItemDto::decl(&cfg),
        InvitationDto::decl(&cfg),
        PairingStateDto::decl(&cfg),
        JoinedDto::decl(&cfg),
        DeviceNoticeDto::decl(&cfg),
        DeviceDisputeDto::decl(&cfg),
        RemovedDeviceDto::decl(&cfg),
        RemovalEffectDto::decl(&cfg),
        DeletedVaultDto::decl(&cfg),
        ImportRequestDto::decl(&cfg),
        KindCountDto::decl(&cfg),
        PreviewItemDto::decl(&cfg),
        SkippedDto::decl(&cfg),
        ImportPreviewDto::decl(&cfg),
        ImportReportDto::decl(&cfg),
        BackupVaultDto::decl(&cfg),
        BackupDto::decl(&cfg),
        RestoredDto::decl(&cfg),
        crate::backup::BackupSchedule::decl(&cfg),
        DeletedSecretDto::decl(&cfg),
        SyncStatusDto::decl(&cfg),
        ConflictDto::decl(&cfg),
        SharedVaultDto::decl(&cfg),
        PersonDto::decl(&cfg),
        GrantDto::decl(&cfg),
        VaultSharingDto::decl(&cfg),
        ShareOfferDto::decl(&cfg),
        NotificationDto::decl(&cfg),
        ContactDto::decl(&cfg),
        crate::identities::IdentityLogin::decl(&cfg),
        crate::identities::LinkedIdentity::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from polykey-node's api module by `UPDATE_BINDINGS=1 cargo test -p polykey-tests --test tidy`.\n// Do not edit by hand.\n",
    );
    for decl in decls {
        out.push_str("\nexport ");
        out.push_str(&decl);
        out.push('\n');
    }
    out
}
