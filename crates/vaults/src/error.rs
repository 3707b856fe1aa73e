use polykey_db::DbError;

/// Why a vault or secret operation failed. No message contains a secret's
/// contents; paths appear only where the user typed them.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No vault has this name or id.
    #[error("no vault named '{0}'")]
    UnknownVault(String),
    /// A vault with this name already exists.
    #[error("a vault named '{0}' already exists")]
    VaultExists(String),
    /// The vault name is empty, too long or has control characters.
    #[error("invalid vault name: {0}")]
    InvalidVaultName(&'static str),
    /// The secret path is not acceptable.
    #[error("invalid secret path: {0}")]
    InvalidPath(&'static str),
    /// Nothing exists at this path.
    #[error("no secret or directory at '{0}'")]
    NotFound(String),
    /// Something already exists at this path.
    #[error("'{0}' already exists")]
    AlreadyExists(String),
    /// A secret is in the way of a directory, or the reverse.
    #[error("'{0}' is a {1}")]
    WrongKind(String, &'static str),
    /// The directory is not empty and the removal was not recursive.
    #[error("directory '{0}' is not empty")]
    DirectoryNotEmpty(String),
    /// The secret is larger than the limit.
    #[error("a secret can be at most {max} bytes; this one is {size}")]
    TooLarge {
        /// The size given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The version does not name a commit of this vault.
    #[error("no version '{0}' in this vault")]
    UnknownVersion(String),
    /// A version prefix matches more than one commit.
    #[error("version '{0}' is ambiguous; give more characters")]
    AmbiguousVersion(String),
    /// A stored object is missing or does not hash to its id.
    #[error("the vault's history is damaged: {0}")]
    Corrupt(String),
    /// The export target exists.
    #[error("cannot export: {0}")]
    Export(String),
    /// The store refused.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl VaultError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}
