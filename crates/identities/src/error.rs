use polykey_gestalts::ClaimError;

/// Why an identity operation failed. Messages name what was being done and
/// what to do about it; none carries a token, a device code or a response
/// body.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A configured base URL is unusable.
    #[error("invalid identity provider setting: {0}")]
    Config(&'static str),
    /// An identity (login) or search given is not well-formed.
    #[error("invalid identity: {0}")]
    InvalidIdentity(&'static str),
    /// The provider did not answer within the time allowed.
    #[error("the identity provider did not answer in time ({0}); try again later")]
    Timeout(&'static str),
    /// The provider could not be reached.
    #[error("could not reach the identity provider ({what}): {reason}")]
    Unreachable {
        /// What was being asked.
        what: &'static str,
        /// Why, in general terms.
        reason: &'static str,
    },
    /// The provider answered with an unexpected HTTP status.
    #[error("the identity provider answered HTTP {status} ({what})")]
    Status {
        /// What was being asked.
        what: &'static str,
        /// The HTTP status code.
        status: u16,
    },
    /// The provider refused the token: it expired or was revoked.
    #[error("the identity provider refused the access token ({0}); authenticate again")]
    Unauthorized(&'static str),
    /// The provider is rate limiting this client.
    #[error("the identity provider is rate limiting requests ({0}); try again later")]
    RateLimited(&'static str),
    /// A response was larger than this client accepts.
    #[error("the identity provider's answer is too large ({what}: over {limit} bytes)")]
    TooLarge {
        /// What was being asked.
        what: &'static str,
        /// The most bytes accepted.
        limit: usize,
    },
    /// A response was not of the documented shape.
    #[error("the identity provider's answer is not understood ({what}): {reason}")]
    BadResponse {
        /// What was being asked.
        what: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The user declined the authorization request.
    #[error("the authorization was declined; start again to link the account")]
    AccessDenied,
    /// The device code expired before the user approved it.
    #[error("the code expired before it was entered; start the authentication again")]
    Expired,
    /// The provider refused the device flow for another reason (its error
    /// code, e.g. `device_flow_disabled`).
    #[error("the identity provider refused the device flow: {0}")]
    DeviceFlow(String),
    /// The account does not exist.
    #[error("no such account on the identity provider: {0}")]
    NoSuchIdentity(String),
    /// The text holds no Polykey claim.
    #[error("no Polykey identity claim in that text")]
    NoClaim,
    /// The claim is not a valid identity claim (its signature, shape or
    /// type).
    #[error("the identity claim is invalid: {0}")]
    Claim(#[from] ClaimError),
    /// The claim is valid but names another identity than the account it
    /// was found under.
    #[error("the identity claim names another account than the one it was found under")]
    WrongIdentity,
}
