use polykey_db::DbError;

/// Why a claim, a chain or a link was refused. Messages name no secret.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The token is not well-formed (encoding, JSON, size, fields).
    #[error("malformed claim: {0}")]
    Malformed(&'static str),
    /// A signature does not verify, or a required signer did not sign.
    #[error("claim signature invalid: {0}")]
    BadSignature(&'static str),
    /// The claim does not continue the chain (sequence, previous id/digest,
    /// issuer).
    #[error("claim does not extend the chain: {0}")]
    BrokenChain(&'static str),
    /// The claim is of the wrong type for this use.
    #[error("wrong kind of claim: {0}")]
    WrongType(&'static str),
    /// The node was removed from the gestalt after this claim was made.
    #[error("that device was removed from this gestalt")]
    Revoked,
    /// The store refused.
    #[error(transparent)]
    Db(#[from] DbError),
}
