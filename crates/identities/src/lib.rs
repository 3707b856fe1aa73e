//! Digital identities for Polykey, as the original Polykey has them: a node
//! proves it speaks for an account on an identity provider (GitHub) by
//! publishing its signed `ClaimLinkIdentity` where anyone can read it under
//! that account (a public gist), and anyone can find that post and check it.
//!
//! [`IdentityProvider`] is the small trait every provider implements: the
//! OAuth device flow (start, poll), the authenticated user, publishing a
//! claim, finding the claims under an account, and looking accounts up.
//! [`GitHub`] is the real provider over HTTPS, with configurable base URLs
//! so tests run it against a loopback server. [`claim`] turns a signed claim
//! into the text to post and checks a post's text: its signature and that it
//! names exactly the account it was found under.
//!
//! This crate stores nothing (tokens and proofs are the node's to keep) and
//! never logs; every response is size-bounded before it is parsed, every
//! call has a timeout, and no error carries a token.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The text posted for a claim, and checking a post found under an account.
pub mod claim;
/// Errors.
mod error;
/// The GitHub provider over HTTP.
pub mod github;
/// Bounded HTTP helpers shared by providers.
mod http;
/// The provider trait and what it deals in.
pub mod provider;
/// Tokens and device codes: secrets.
pub mod secret;

pub use claim::{claim_text, discover, verify_identity_claim, VerifiedClaim, CLAIM_FILE_NAME};
pub use error::IdentityError;
pub use github::{GitHub, GitHubConfig, GITHUB_PROVIDER_ID};
pub use provider::{
    wait_for_token, DeviceAuthorization, FoundClaim, Identity, IdentityProvider, Poll, Published,
};
pub use secret::{AccessToken, DeviceCode};
