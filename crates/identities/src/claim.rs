use polykey_gestalts::claims::{identity_id, parse_identity};
use polykey_gestalts::{ClaimType, SignedClaim};
use polykey_keys::NodeId;

use crate::{AccessToken, IdentityError, IdentityProvider};

/// The name of the file (a gist's) that holds a claim, as Polykey names it.
pub const CLAIM_FILE_NAME: &str = "cryptolink.txt";
/// The largest claim text posted or read (bytes).
pub const MAX_CLAIM_FILE_BYTES: usize = 8 * 1024;
/// The line before the claim's JSON in a post.
pub const CLAIM_BEGIN: &str = "-----BEGIN POLYKEY IDENTITY CLAIM-----";
/// The line after it.
pub const CLAIM_END: &str = "-----END POLYKEY IDENTITY CLAIM-----";

/// A claim found under an account that verified for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClaim {
    /// The node that signed it.
    pub node: NodeId,
    /// Where it was found.
    pub url: String,
    /// The claim.
    pub claim: SignedClaim,
}

/// The text to post for `claim`, a signed `ClaimLinkIdentity`: a line a
/// person can read, then the claim's JSON between markers.
pub fn claim_text(claim: &SignedClaim) -> Result<String, IdentityError> {
    let payload = claim.verify()?;
    if payload.typ != ClaimType::ClaimLinkIdentity {
        return Err(IdentityError::Claim(
            polykey_gestalts::ClaimError::WrongType("not an identity claim"),
        ));
    }
    let identity = payload.identity.as_deref().unwrap_or_default();
    let (provider, login) = parse_identity(identity)?;
    let json = String::from_utf8(claim.to_json()).map_err(|_| IdentityError::NoClaim)?;
    let text = format!(
        "This links the {provider} account {login} to the Polykey node {node}.\n\n\
         {CLAIM_BEGIN}\n{json}\n{CLAIM_END}\n",
        node = payload.iss,
    );
    if text.len() > MAX_CLAIM_FILE_BYTES {
        return Err(IdentityError::TooLarge {
            what: "the claim's text",
            limit: MAX_CLAIM_FILE_BYTES,
        });
    }
    Ok(text)
}

fn claim_json(text: &str) -> Result<&str, IdentityError> {
    let (_, rest) = text.split_once(CLAIM_BEGIN).ok_or(IdentityError::NoClaim)?;
    let (json, _) = rest.split_once(CLAIM_END).ok_or(IdentityError::NoClaim)?;
    Ok(json.trim())
}

/// Check a post's `text` found under `provider:login`: the node whose
/// signature on the claim verifies, if the claim is a `ClaimLinkIdentity`
/// naming exactly that identity (the login compared without ASCII case, as
/// providers treat logins). A claim copied under another account names its
/// own, and is refused.
pub fn verify_identity_claim(
    text: &str,
    provider: &str,
    login: &str,
) -> Result<NodeId, IdentityError> {
    Ok(check(text, provider, login)?.0)
}

fn check(text: &str, provider: &str, login: &str) -> Result<(NodeId, SignedClaim), IdentityError> {
    identity_id(provider, login)
        .map_err(|_| IdentityError::InvalidIdentity("not a provider and login"))?;
    if text.len() > MAX_CLAIM_FILE_BYTES {
        return Err(IdentityError::TooLarge {
            what: "the claim's text",
            limit: MAX_CLAIM_FILE_BYTES,
        });
    }
    let claim = SignedClaim::from_json(claim_json(text)?.as_bytes())?;
    let payload = claim.verify()?;
    if payload.typ != ClaimType::ClaimLinkIdentity {
        return Err(IdentityError::Claim(
            polykey_gestalts::ClaimError::WrongType("not an identity claim"),
        ));
    }
    let (claimed_provider, claimed_login) =
        parse_identity(payload.identity.as_deref().unwrap_or_default())?;
    if claimed_provider != provider || !claimed_login.eq_ignore_ascii_case(login) {
        return Err(IdentityError::WrongIdentity);
    }
    Ok((payload.iss, claim))
}

/// The claims under `login`'s account on `provider` that verify for it
/// (see [`verify_identity_claim`]); posts that do not verify are left out.
pub async fn discover(
    provider: &dyn IdentityProvider,
    login: &str,
    token: Option<&AccessToken>,
) -> Result<Vec<VerifiedClaim>, IdentityError> {
    let found = provider.claims_of(login, token).await?;
    Ok(found
        .into_iter()
        .filter_map(|f| {
            check(&f.text, provider.id(), login)
                .ok()
                .map(|(node, claim)| VerifiedClaim {
                    node,
                    url: f.url,
                    claim,
                })
        })
        .collect())
}
