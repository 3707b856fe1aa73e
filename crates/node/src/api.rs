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
        Self {
            code: error.code(),
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
