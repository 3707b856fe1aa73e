use polykey_db::DbError;

/// Why a vault or secret operation failed. No message contains a secret's
/// contents, a secret's name or a vault's name (DESIGN's invariant); the
/// variants carry them for callers that already know them.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No vault has this name or id.
    #[error("there is no vault with that name")]
    UnknownVault(String),
    /// A vault with this name already exists.
    #[error("a vault with that name already exists")]
    VaultExists(String),
    /// The vault name is empty, too long or has control characters.
    #[error("invalid vault name: {0}")]
    InvalidVaultName(&'static str),
    /// The secret path is not acceptable.
    #[error("invalid secret path: {0}")]
    InvalidPath(&'static str),
    /// Nothing exists at this path.
    #[error("there is no secret or directory at that path")]
    NotFound(String),
    /// Something already exists at this path.
    #[error("something already exists at that path")]
    AlreadyExists(String),
    /// A secret is in the way of a directory, or the reverse.
    #[error("that path is a {1}")]
    WrongKind(String, &'static str),
    /// The directory is not empty and the removal was not recursive.
    #[error("the directory is not empty")]
    DirectoryNotEmpty(String),
    /// The secret is larger than the limit.
    #[error("a secret can be at most {max} bytes; this one is {size}")]
    TooLarge {
        /// The size given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A version would pass a bound every copy holds a vault to (a
    /// directory's listing over 16 MiB, more than 1,000,000 files and
    /// directories, paths adding up to more than 64 MiB, nesting deeper
    /// than 64 levels), so no copy may write it or take it in.
    #[error("a vault cannot hold that: {0}")]
    OverLimit(&'static str),
    /// The version does not name a commit of this vault.
    #[error("this vault has no such version")]
    UnknownVersion(String),
    /// A version prefix matches more than one commit.
    #[error("that version prefix matches several versions; give more characters")]
    AmbiguousVersion(String),
    /// A stored object is missing or does not hash to its id.
    #[error("the vault's history is damaged: {0}")]
    Corrupt(String),
    /// Data received from another node failed a check (an object that does
    /// not hash to its id, a commit by a node outside the gestalt, an
    /// incomplete history); nothing of it was kept.
    #[error("refused data from the other node: {0}")]
    Refused(String),
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
