//! Linked identities: an account on an identity provider (GitHub) tied to
//! this node by a signed `ClaimLinkIdentity` on its sigchain, posted where
//! anyone can read it under that account; and other people's claims found
//! under their accounts, each checked against the node's signature.
//!
//! Logging in is the provider's OAuth device flow: the person enters a short
//! code on the provider's site; the access token is kept sealed in the
//! node's store, never shown, logged or sent anywhere but the provider.

use std::collections::HashMap;
use std::sync::Arc;

use polykey_db::{RecordKey, Table};
use polykey_gestalts::claims::{identity_id, parse_identity};
use polykey_gestalts::{ClaimType, Sigchain, SignedClaim};
use polykey_identities::{
    claim_text, discover, wait_for_token, AccessToken, DeviceAuthorization, GitHub, GitHubConfig,
    Identity, IdentityError, IdentityProvider, GITHUB_PROVIDER_ID,
};
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, Session};
use crate::peers::now_secs;

/// The environment variable naming the GitHub OAuth app's client id the
/// device flow uses (an app registered by whoever ships this build).
pub const GITHUB_CLIENT_ID_VAR: &str = "POLYKEY_GITHUB_CLIENT_ID";
/// The environment variable moving every GitHub endpoint under one base
/// URL (GitHub Enterprise, or a test server).
pub const GITHUB_URL_VAR: &str = "POLYKEY_GITHUB_URL";
/// Most accounts found by one discovery kept per identity.
const MAX_DISCOVERED_NODES: usize = 64;

/// Identity providers and device flows under way, in memory.
#[derive(Default)]
pub(crate) struct IdentityState {
    providers: HashMap<String, Arc<dyn IdentityProvider>>,
    flows: HashMap<String, Arc<DeviceAuthorization>>,
}

/// A device flow started: what the person enters, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct IdentityLogin {
    /// The provider, e.g. `github.com`.
    pub provider: String,
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// How long the code stays valid, in seconds.
    #[ts(type = "number")]
    pub expires_in_secs: u64,
}

/// An identity this node claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct LinkedIdentity {
    /// `provider:login`, e.g. `github.com:alice`.
    pub identity: String,
    /// Where the claim is posted for anyone to read.
    pub proof_url: String,
    /// When it was claimed, seconds since the Unix epoch.
    #[ts(type = "number")]
    pub claimed_at: u64,
}

/// A node found under an account, its claim checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredNode {
    /// `provider:login`.
    pub identity: String,
    /// The node whose signature on the claim verified.
    pub node: NodeId,
    /// Where the claim was found.
    pub proof_url: String,
}

/// An account on a provider, as a search or a look-up found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundIdentity {
    /// `provider:login`.
    pub identity: String,
    /// Its display name, if it has one.
    pub name: Option<String>,
    /// Its profile page, if the provider gives one.
    pub url: Option<String>,
}

impl FoundIdentity {
    fn from_account(account: Identity) -> Result<Self, NodeError> {
        Ok(Self {
            identity: identity_id(&account.provider, &account.login)?,
            name: account.name,
            url: account.url,
        })
    }
}

/// What was last found under an account.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Discovered {
    identity: String,
    nodes: Vec<DiscoveredNode>,
    verified_at: u64,
}

/// A provider's access token, sealed in the store like every record.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    provider: String,
    login: String,
    token: String,
}

impl Drop for StoredToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

const TOKENS: Table<StoredToken> = Table::new("identity_tokens");
const CLAIMED: Table<LinkedIdentity> = Table::new("identity_claimed");
const DISCOVERED: Table<Discovered> = Table::new("identity_discovered");

fn token_key(s: &Session, provider: &str) -> RecordKey {
    s.db.record_key(TOKENS.name(), provider.as_bytes())
}

/// `provider:login` split, checked.
fn split_identity(identity: &str) -> Result<(String, String), NodeError> {
    let (provider, login) = parse_identity(identity).map_err(|_| {
        NodeError::Invalid(format!(
            "not an identity: expected provider:login, such as {GITHUB_PROVIDER_ID}:alice"
        ))
    })?;
    Ok((provider.to_owned(), login.to_owned()))
}

impl Node {
    /// Use `provider` for its id (instead of the one configured by the
    /// environment, see [`GITHUB_CLIENT_ID_VAR`]).
    pub fn add_identity_provider(&self, provider: Arc<dyn IdentityProvider>) {
        if let Ok(mut state) = self.inner.identities.lock() {
            state.providers.insert(provider.id().to_owned(), provider);
        }
    }

    fn identity_provider(&self, id: &str) -> Result<Arc<dyn IdentityProvider>, NodeError> {
        let mut state = self
            .inner
            .identities
            .lock()
            .map_err(|_| NodeError::Internal("identity state poisoned".into()))?;
        if let Some(provider) = state.providers.get(id) {
            return Ok(Arc::clone(provider));
        }
        if id != GITHUB_PROVIDER_ID {
            return Err(NodeError::Invalid(format!(
                "unknown identity provider {id:?}; the one known is {GITHUB_PROVIDER_ID}"
            )));
        }
        let client_id = std::env::var(GITHUB_CLIENT_ID_VAR).map_err(|_| {
            NodeError::Invalid(format!(
                "GitHub is not set up in this build: set {GITHUB_CLIENT_ID_VAR} to the client id \
                 of a GitHub OAuth app with the device flow enabled"
            ))
        })?;
        let config = match std::env::var(GITHUB_URL_VAR) {
            Ok(base) => GitHubConfig::at(client_id, &base),
            Err(_) => GitHubConfig::new(client_id),
        };
        let provider: Arc<dyn IdentityProvider> = Arc::new(GitHub::new(config)?);
        state.providers.insert(id.to_owned(), Arc::clone(&provider));
        Ok(provider)
    }

    /// Start logging in to `provider` (the OAuth device flow): show the
    /// person the code and where to enter it, then call
    /// [`Node::finish_identity_login`].
    pub async fn start_identity_login(&self, provider: &str) -> Result<IdentityLogin, NodeError> {
        self.require_unlocked().await?;
        let source = self.identity_provider(provider)?;
        let flow = source.start_device_flow().await?;
        let login = IdentityLogin {
            provider: provider.to_owned(),
            user_code: flow.user_code.clone(),
            verification_uri: flow.verification_uri.clone(),
            expires_in_secs: flow.expires_in.as_secs(),
        };
        if let Ok(mut state) = self.inner.identities.lock() {
            state.flows.insert(provider.to_owned(), Arc::new(flow));
        }
        Ok(login)
    }

    /// Wait until the person approved the login started with
    /// [`Node::start_identity_login`] (or declined, or the code expired);
    /// keep the access token sealed in the store. Returns the identity.
    pub async fn finish_identity_login(&self, provider: &str) -> Result<String, NodeError> {
        let flow = self
            .inner
            .identities
            .lock()
            .ok()
            .and_then(|state| state.flows.get(provider).cloned())
            .ok_or_else(|| {
                NodeError::Invalid(format!("no login to {provider} was started here"))
            })?;
        let source = self.identity_provider(provider)?;
        let waited = wait_for_token(source.as_ref(), &flow).await;
        if let Ok(mut state) = self.inner.identities.lock() {
            state.flows.remove(provider);
        }
        let token = waited?;
        let user = source.user(&token).await?;
        let identity = identity_id(provider, &user.login)?;
        let stored = StoredToken {
            provider: provider.to_owned(),
            login: user.login,
            token: token.expose_secret().to_owned(),
        };
        let name = stored.provider.clone();
        self.keep(&TOKENS, name, stored).await?;
        Ok(identity)
    }

    /// The account logged in to on `provider` and its token.
    async fn identity_token(&self, provider: &str) -> Result<(String, AccessToken), NodeError> {
        let provider = provider.to_owned();
        self.with_vaults(move |s| {
            let stored = s
                .db
                .read()?
                .get(&TOKENS, &token_key(s, &provider))?
                .ok_or_else(|| {
                    NodeError::Invalid(format!(
                        "not logged in to {provider}; run `polykey identities authenticate {provider}` first"
                    ))
                })?;
            Ok((
                stored.login.clone(),
                AccessToken::new(stored.token.clone()),
            ))
        })
        .await
    }

    /// Claim the account logged in to on `provider` for this node: a signed
    /// `ClaimLinkIdentity` on this node's chain (its devices see it at the
    /// next sync), posted publicly under the account. Returns the claim's
    /// identity and where it is posted.
    pub async fn claim_identity(&self, provider: &str) -> Result<LinkedIdentity, NodeError> {
        let source = self.identity_provider(provider)?;
        let (login, token) = self.identity_token(provider).await?;
        let identity = identity_id(provider, &login)?;
        let claimed = identity.clone();
        let claim: SignedClaim = self
            .with_vaults(move |s| {
                let me = s.keys.node_id();
                let chain = Sigchain::new(&s.db, me);
                let mut payload = chain.next_payload(
                    ClaimType::ClaimLinkIdentity,
                    me,
                    now_secs().saturating_mul(1000),
                )?;
                payload.identity = Some(claimed);
                let claim = SignedClaim::issue(&payload, &s.keys)?;
                chain.append(&claim)?;
                Ok(claim)
            })
            .await?;
        let text = claim_text(&claim)?;
        let published = source.publish(&token, &text).await?;
        let linked = LinkedIdentity {
            identity,
            proof_url: published.url,
            claimed_at: now_secs(),
        };
        self.keep(&CLAIMED, linked.identity.clone(), linked.clone())
            .await?;
        self.notify();
        Ok(linked)
    }

    /// The identities this node claimed, by identity.
    pub async fn linked_identities(&self) -> Result<Vec<LinkedIdentity>, NodeError> {
        self.with_vaults(|s| {
            let mut all: Vec<LinkedIdentity> =
                s.db.read()?
                    .entries(&CLAIMED)?
                    .into_iter()
                    .map(|(_, l)| l)
                    .collect();
            all.sort_by(|a, b| a.identity.cmp(&b.identity));
            Ok(all)
        })
        .await
    }

    /// The nodes that claimed `identity` (`provider:login`): each claim
    /// found under the account whose signature verifies and that names
    /// exactly that account. Kept, to show again without asking.
    pub async fn discover_identity(
        &self,
        identity: &str,
    ) -> Result<Vec<DiscoveredNode>, NodeError> {
        self.claimed_nodes(identity)
            .await?
            .ok_or_else(|| IdentityError::NoSuchIdentity(identity.trim().to_owned()).into())
    }

    /// [`Node::discover_identity`], but `None` when the account does not
    /// exist (any more): for a person trusted by it, that is an answer
    /// (none of their claims stands), not a failure. Failing to reach the
    /// provider stays an error.
    pub(crate) async fn claimed_nodes(
        &self,
        identity: &str,
    ) -> Result<Option<Vec<DiscoveredNode>>, NodeError> {
        self.require_unlocked().await?;
        let (provider, login) = split_identity(identity)?;
        let source = self.identity_provider(&provider)?;
        let token = self.identity_token(&provider).await.ok().map(|(_, t)| t);
        let found = match discover(source.as_ref(), &login, token.as_ref()).await {
            Err(IdentityError::NoSuchIdentity(_)) => return Ok(None),
            found => found?,
        };
        let identity = identity_id(&provider, &login)?;
        let mut nodes: Vec<DiscoveredNode> = Vec::new();
        for claim in found {
            if nodes.len() >= MAX_DISCOVERED_NODES {
                break;
            }
            if nodes.iter().any(|n| n.node == claim.node) {
                continue;
            }
            nodes.push(DiscoveredNode {
                identity: identity.clone(),
                node: claim.node,
                proof_url: claim.url,
            });
        }
        let record = Discovered {
            identity: identity.clone(),
            nodes: nodes.clone(),
            verified_at: now_secs(),
        };
        self.keep(&DISCOVERED, identity, record).await?;
        Ok(Some(nodes))
    }

    /// The identities whose last discovery here found `node` among their
    /// claimed nodes (at most `limit`), by identity.
    pub(crate) async fn identities_claimed_by(
        &self,
        node: NodeId,
        limit: usize,
    ) -> Result<Vec<String>, NodeError> {
        self.with_vaults(move |s| {
            let mut found: Vec<String> =
                s.db.read()?
                    .entries(&DISCOVERED)?
                    .into_iter()
                    .map(|(_, d)| d)
                    .filter(|d| d.nodes.iter().any(|n| n.node == node))
                    .map(|d| d.identity)
                    .collect();
            found.sort();
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    /// The account `identity` (`provider:login`) names, as its provider
    /// has it now; `None` when there is no such account.
    pub(crate) async fn identity_account(
        &self,
        identity: &str,
    ) -> Result<Option<FoundIdentity>, NodeError> {
        self.require_unlocked().await?;
        let (provider, login) = split_identity(identity)?;
        let source = self.identity_provider(&provider)?;
        let token = self.identity_token(&provider).await.ok().map(|(_, t)| t);
        source
            .get(&login, token.as_ref())
            .await?
            .map(FoundIdentity::from_account)
            .transpose()
    }

    /// Accounts on `provider` whose login matches `query` (the provider's
    /// own search, a few at most), asked with the token when logged in.
    /// A provider that searches only for people logged in says so.
    pub async fn search_identities(
        &self,
        provider: &str,
        query: &str,
    ) -> Result<Vec<FoundIdentity>, NodeError> {
        self.require_unlocked().await?;
        let source = self.identity_provider(provider)?;
        let token = self.identity_token(provider).await.ok().map(|(_, t)| t);
        let found = match source.search(query.trim(), token.as_ref()).await {
            Err(IdentityError::Unauthorized(_)) if token.is_none() => {
                return Err(NodeError::Invalid(format!(
                    "{provider} searches only for people logged in; run \
                     `polykey identities authenticate {provider}` first"
                )))
            }
            found => found?,
        };
        // An account whose login is not one Polykey can name is left out.
        Ok(found
            .into_iter()
            .filter_map(|account| FoundIdentity::from_account(account).ok())
            .collect())
    }

    /// Keep `record` in `table` under `name` (sealed, like every record).
    async fn keep<T: Serialize + Send + 'static>(
        &self,
        table: &'static Table<T>,
        name: String,
        record: T,
    ) -> Result<(), NodeError> {
        self.with_vaults(move |s| {
            let key = s.db.record_key(table.name(), name.as_bytes());
            let mut txn = s.db.write()?;
            txn.put(table, &key, &record)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn require_unlocked(&self) -> Result<(), NodeError> {
        self.with_vaults(|_| Ok(())).await
    }
}

impl From<IdentityError> for NodeError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::InvalidIdentity(_) | IdentityError::Config(_) => {
                Self::Invalid(e.to_string())
            }
            IdentityError::NoSuchIdentity(_) => Self::UnknownTarget(e.to_string()),
            _ => Self::Network(e.to_string()),
        }
    }
}
