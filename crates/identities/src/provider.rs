use std::time::Duration;

use async_trait::async_trait;

use crate::{AccessToken, DeviceCode, IdentityError};

/// The shortest wait between two polls of a device flow, whatever the
/// provider says.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two polls of a device flow.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// How much longer to wait after `slow_down` when the provider names no new
/// interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest a device flow is waited for, whatever the provider says.
pub const MAX_DEVICE_FLOW: Duration = Duration::from_secs(30 * 60);

/// A started device flow: what to show the user, and what to poll with.
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// The code the user types at [`DeviceAuthorization::verification_uri`].
    pub user_code: String,
    /// Where the user approves (e.g. `https://github.com/login/device`).
    pub verification_uri: String,
    /// The secret code polled with.
    pub device_code: DeviceCode,
    /// The least time between polls.
    pub interval: Duration,
    /// How long the codes stay valid.
    pub expires_in: Duration,
}

/// One poll's answer.
#[derive(Debug)]
pub enum Poll {
    /// The user has not approved yet: poll again after the interval.
    Pending,
    /// Polling too fast: poll less often from now on.
    SlowDown {
        /// The new least time between polls, when the provider names one;
        /// otherwise [`SLOW_DOWN_STEP`] more than before.
        interval: Option<Duration>,
    },
    /// Approved: the access token.
    Authorized(AccessToken),
}

/// An account on a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's id, e.g. `github.com`.
    pub provider: String,
    /// The account's login (as the provider spells it).
    pub login: String,
    /// Its display name, if any.
    pub name: Option<String>,
    /// Its profile page, if any.
    pub url: Option<String>,
}

/// A post made by [`IdentityProvider::publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The provider's id for the post (a gist id).
    pub id: String,
    /// Where anyone can read it.
    pub url: String,
}

/// A claim's text found under an account, not yet verified (see
/// [`crate::verify_identity_claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundClaim {
    /// Where it was found (the post's page).
    pub url: String,
    /// The post's text.
    pub text: String,
}

/// An identity provider, as in Polykey: authenticate by the OAuth device
/// flow, publish a claim where others can read it under the account, find
/// the claims under an account, look accounts up.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The provider's id, e.g. `github.com`: the `provider` of an identity
    /// `provider:login`.
    fn id(&self) -> &str;

    /// Start a device flow: the user code and where to enter it, and the
    /// device code to poll with.
    async fn start_device_flow(&self) -> Result<DeviceAuthorization, IdentityError>;

    /// Poll a started device flow once. The user declining is
    /// [`IdentityError::AccessDenied`]; the codes expiring is
    /// [`IdentityError::Expired`].
    async fn poll_device_flow(&self, flow: &DeviceAuthorization) -> Result<Poll, IdentityError>;

    /// The account `token` authenticates.
    async fn user(&self, token: &AccessToken) -> Result<Identity, IdentityError>;

    /// Publish `text` (see [`crate::claim_text`]) publicly under the
    /// token's account; where it can be read.
    async fn publish(&self, token: &AccessToken, text: &str) -> Result<Published, IdentityError>;

    /// The Polykey claim texts found under `login`'s account, bounded in
    /// number, size and time. A token, if given, is only for rate limits.
    async fn claims_of(
        &self,
        login: &str,
        token: Option<&AccessToken>,
    ) -> Result<Vec<FoundClaim>, IdentityError>;

    /// The account `login`, or `None` when there is none.
    async fn get(
        &self,
        login: &str,
        token: Option<&AccessToken>,
    ) -> Result<Option<Identity>, IdentityError>;

    /// Accounts whose login matches `query`, at most a provider-set few.
    async fn search(
        &self,
        query: &str,
        token: Option<&AccessToken>,
    ) -> Result<Vec<Identity>, IdentityError>;
}

/// Poll `flow` until the user approves, declines, or the codes expire,
/// waiting the interval between polls and longer when told to slow down.
pub async fn wait_for_token(
    provider: &dyn IdentityProvider,
    flow: &DeviceAuthorization,
) -> Result<AccessToken, IdentityError> {
    let deadline = tokio::time::Instant::now() + flow.expires_in.min(MAX_DEVICE_FLOW);
    let mut interval = flow.interval.clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL);
    loop {
        if tokio::time::Instant::now() + interval > deadline {
            return Err(IdentityError::Expired);
        }
        tokio::time::sleep(interval).await;
        match provider.poll_device_flow(flow).await? {
            Poll::Authorized(token) => return Ok(token),
            Poll::Pending => {}
            Poll::SlowDown { interval: next } => {
                interval = match next {
                    Some(next) if next > interval => next,
                    _ => interval + SLOW_DOWN_STEP,
                }
                .min(MAX_POLL_INTERVAL);
            }
        }
    }
}
