use polykey_db::DbError;
use polykey_keys::{RecoveryCodeError, UnwrapError};
use polykey_vaults::VaultError;

use crate::api::ErrorCode;

/// Why a node operation failed. Messages are written for the user and never
/// contain a secret; [`NodeError::code`] is what front ends branch on.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Create was called where a node already lives.
    #[error("a node already exists here; unlock it or recover it with its recovery code")]
    AlreadyExists,
    /// An operation needs a node and there is none yet.
    #[error("there is no node here yet; create one or recover one from a recovery code")]
    NotInitialised,
    /// Another process holds the node directory.
    #[error("this node is already in use by another Polykey process")]
    InUse,
    /// The password does not unlock the node.
    #[error("wrong password")]
    WrongPassword,
    /// A new password is too short.
    #[error("the password must be at least {min} characters long")]
    PasswordTooShort {
        /// The minimum length in characters.
        min: usize,
    },
    /// A preference is out of bounds.
    #[error("{0}")]
    InvalidPreference(&'static str),
    /// The operation needs an unlocked node.
    #[error("the node is locked")]
    Locked,
    /// A key kept in the OS keyring no longer opens the node.
    #[error("the key in the system keyring no longer fits (the password changed); unlock with your password")]
    StaleKey,
    /// Unlock or recover was called on an unlocked node.
    #[error("the node is already unlocked")]
    AlreadyUnlocked,
    /// The recovery code is malformed.
    #[error("invalid recovery code: {0}")]
    InvalidRecoveryCode(#[from] RecoveryCodeError),
    /// The recovery code is valid but belongs to another node.
    #[error("this recovery code belongs to a different node")]
    RecoveryCodeMismatch,
    /// The key file is unreadable or damaged.
    #[error("the node's key file is damaged; recover the node with its recovery code")]
    KeyFileCorrupt,
    /// At unlock: the store was written or edited without this node's key
    /// (a file replaced, or records deleted or put back, while locked).
    #[error(
        "this device's data was changed while Polykey was locked (a file in its folder was \
         replaced or edited), so nothing was read from it; restore the folder from a backup, \
         or recover with your recovery code into an empty folder and pair again"
    )]
    StoreTampered,
    /// Reading or writing the store failed in a way its checks did not
    /// foresee (a damaged file can make the storage engine give up).
    #[error(
        "Polykey could not read or write this device's data, which may be damaged; \
         if this happens again, restore the folder from a backup, or recover with your \
         recovery code into an empty folder and pair again"
    )]
    Damaged,
    /// The encrypted store refused.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A vault or secret operation refused.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A typed item is unreadable or lacks the field.
    #[error(transparent)]
    Item(polykey_vaults::items::ItemError),
    /// A TOTP setting is invalid.
    #[error(transparent)]
    Totp(polykey_vaults::totp::TotpError),
    /// Generator rules cannot be met.
    #[error(transparent)]
    Generate(polykey_vaults::generate::GenerateError),
    /// The operating system refused a file operation.
    #[error("could not {action}: {source}")]
    Io {
        /// What the node was doing.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Input that cannot be used (a malformed signature, an unreadable
    /// picture, encrypted data for another node).
    #[error("{0}")]
    Invalid(String),
    /// A person, node or account named that is neither known here nor
    /// found at its identity provider.
    #[error("{0}")]
    UnknownTarget(String),
    /// The network is off (the node is locked or was opened without it).
    #[error("the network is not running; unlock the node first")]
    NetworkOff,
    /// Talking to another node failed.
    #[error("{0}")]
    Network(String),
    /// Another node refused a request or sent data that failed a check.
    #[error("the other device refused: {0}")]
    PeerRefused(String),
    /// Another node sent something that failed a check here (too large,
    /// out of order, forged): nothing of it was kept.
    #[error("refused what another device sent: {0}")]
    BadPeerData(String),
    /// Pairing failed.
    #[error(transparent)]
    Pairing(#[from] polykey_gestalts::pairing::PairingError),
    /// A claim or the gestalt graph refused.
    #[error(transparent)]
    Claim(#[from] polykey_gestalts::ClaimError),
    /// Another person's vault, shared with this gestalt to read only.
    #[error("{0}")]
    ReadOnly(String),
    /// An export could not be imported (nothing of it was written).
    #[error("nothing was imported: {0}")]
    Import(#[from] crate::import::ImportError),
    /// A backup file could not be written or read.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// A background task failed (a bug, reported rather than a panic).
    #[error("internal error: {0}")]
    Internal(String),
}

impl NodeError {
    pub(crate) fn io(action: &'static str, source: std::io::Error) -> Self {
        Self::Io { action, source }
    }

    /// The stable code that crosses IPC.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::AlreadyExists => ErrorCode::AlreadyExists,
            Self::NotInitialised => ErrorCode::NotInitialised,
            Self::InUse => ErrorCode::InUse,
            Self::WrongPassword => ErrorCode::WrongPassword,
            Self::PasswordTooShort { .. } => ErrorCode::PasswordTooShort,
            Self::Locked => ErrorCode::Locked,
            Self::InvalidPreference(_) => ErrorCode::BadPreference,
            Self::StaleKey => ErrorCode::KeyringStale,
            Self::AlreadyUnlocked => ErrorCode::AlreadyUnlocked,
            Self::InvalidRecoveryCode(_) => ErrorCode::InvalidRecoveryCode,
            Self::RecoveryCodeMismatch => ErrorCode::RecoveryCodeMismatch,
            Self::KeyFileCorrupt => ErrorCode::KeyFileCorrupt,
            Self::Db(DbError::InUse) => ErrorCode::InUse,
            Self::Db(DbError::Tampered { .. }) | Self::StoreTampered => ErrorCode::Tampered,
            Self::Damaged => ErrorCode::DataCorrupt,
            Self::Db(DbError::WrongKey) => ErrorCode::WrongKey,
            Self::Db(DbError::NotOurs | DbError::NotFound(_) | DbError::Format { .. }) => {
                ErrorCode::DataCorrupt
            }
            Self::Db(DbError::AlreadyExists(_)) => ErrorCode::AlreadyExists,
            Self::Db(DbError::Storage(_) | DbError::Full) | Self::Io { .. } => ErrorCode::Io,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Import(crate::import::ImportError::WrongPassword) => ErrorCode::WrongPassword,
            Self::Import(_) => ErrorCode::InvalidInput,
            Self::Backup(error) => match error {
                crate::backup::BackupError::WrongPassphrase => ErrorCode::WrongPassword,
                crate::backup::BackupError::Io { .. } => ErrorCode::Io,
                _ => ErrorCode::DataCorrupt,
            },
            Self::NetworkOff => ErrorCode::NetworkOff,
            Self::Invalid(_) => ErrorCode::InvalidInput,
            Self::ReadOnly(_) => ErrorCode::ReadOnly,
            Self::UnknownTarget(_) => ErrorCode::UnknownTarget,
            Self::Network(_) => ErrorCode::Network,
            Self::PeerRefused(_) | Self::BadPeerData(_) => ErrorCode::PeerRefused,
            Self::Pairing(error) => match error {
                polykey_gestalts::pairing::PairingError::Expired => ErrorCode::PairingExpired,
                polykey_gestalts::pairing::PairingError::AlreadyUsed
                | polykey_gestalts::pairing::PairingError::TooManyAttempts => {
                    ErrorCode::PairingUsed
                }
                polykey_gestalts::pairing::PairingError::WrongCode => ErrorCode::PairingWrongCode,
                _ => ErrorCode::PairingFailed,
            },
            Self::Claim(_) => ErrorCode::PairingFailed,
            Self::Item(_) => ErrorCode::BadItem,
            Self::Totp(_) => ErrorCode::BadTotp,
            Self::Generate(_) => ErrorCode::BadGeneratorRules,
            Self::Vault(error) => match error {
                VaultError::UnknownVault(_) => ErrorCode::UnknownVault,
                VaultError::VaultExists(_) => ErrorCode::VaultExists,
                VaultError::InvalidVaultName(_) => ErrorCode::InvalidVaultName,
                VaultError::InvalidPath(_) => ErrorCode::InvalidPath,
                VaultError::NotFound(_) => ErrorCode::SecretNotFound,
                VaultError::AlreadyExists(_) => ErrorCode::SecretExists,
                VaultError::WrongKind(..) => ErrorCode::WrongKind,
                VaultError::DirectoryNotEmpty(_) => ErrorCode::DirectoryNotEmpty,
                VaultError::TooLarge { .. } => ErrorCode::SecretTooLarge,
                VaultError::UnknownVersion(_) | VaultError::AmbiguousVersion(_) => {
                    ErrorCode::UnknownVersion
                }
                VaultError::Corrupt(_) => ErrorCode::DataCorrupt,
                VaultError::Export(_) => ErrorCode::Io,
                VaultError::Refused(_) => ErrorCode::PeerRefused,
                VaultError::OverLimit(_) => ErrorCode::InvalidInput,
                VaultError::Db(DbError::Tampered { .. }) => ErrorCode::Tampered,
                VaultError::Db(_) => ErrorCode::Io,
            },
        }
    }
}

impl From<UnwrapError> for NodeError {
    fn from(error: UnwrapError) -> Self {
        match error {
            UnwrapError::WrongPassword => Self::WrongPassword,
            UnwrapError::Kdf(_) | UnwrapError::Corrupt => Self::KeyFileCorrupt,
        }
    }
}
