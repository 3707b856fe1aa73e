//! Device names: what people call their devices ("Laptop"), shown instead
//! of NodeIds. A device names itself with a signed `ClaimNameNode` on its
//! own chain, so the name travels wherever the chain does (to the
//! gestalt's devices at every sync, to people following the gestalt) and
//! nobody else can give it one. The latest on a chain counts.

use std::collections::HashMap;

use polykey_gestalts::claims::device_name;
use polykey_gestalts::{ClaimType, MemberChains, Sigchain, SignedClaim};
use polykey_keys::NodeId;

use crate::error::NodeError;
use crate::node::{settings_key, Node, Session, SETTINGS};

/// Most names one device may give itself: each is a claim its chain keeps
/// for good, and every device of the gestalt copies it.
pub const MAX_RENAMES: usize = 100;

/// The name claims on `claims`, in order.
fn names_on(claims: &[SignedClaim]) -> impl Iterator<Item = String> + '_ {
    claims.iter().filter_map(|claim| {
        let payload = claim.decode().ok()?;
        (payload.typ == ClaimType::ClaimNameNode && payload.iss == payload.sub)
            .then_some(payload.name)
            .flatten()
    })
}

/// The claims of `node`'s chain as this device holds them: its own, or
/// its copy of a member's (empty for any other node).
fn chain_of(s: &Session, node: &NodeId) -> Result<Vec<SignedClaim>, NodeError> {
    if *node == s.keys.node_id() {
        Ok(Sigchain::new(&s.db, *node).claims()?)
    } else {
        Ok(MemberChains::new(&s.db).claims_after(node, 0, usize::MAX)?)
    }
}

/// The names of `nodes` known here (those without one are left out). This
/// device's own falls back to a name set before names were claims.
pub(crate) fn names_of(
    s: &Session,
    nodes: impl IntoIterator<Item = NodeId>,
) -> Result<HashMap<NodeId, String>, NodeError> {
    let me = s.keys.node_id();
    let mut out = HashMap::new();
    // Each chain is read once, named or not.
    let mut read = std::collections::HashSet::new();
    for node in nodes {
        if !read.insert(node) {
            continue;
        }
        let mut name = names_on(&chain_of(s, &node)?).last();
        if name.is_none() && node == me {
            let key = settings_key(&s.db);
            name =
                s.db.read()?
                    .get(&SETTINGS, &key)?
                    .and_then(|settings| settings.device_name);
        }
        if let Some(name) = name {
            out.insert(node, name);
        }
    }
    Ok(out)
}

/// The name a new device is offered: the computer's own name (its host
/// name), or a plain one where it has none.
pub fn suggested_name() -> String {
    polykey_os::host_name()
        .and_then(|name| device_name(&name).ok())
        .unwrap_or_else(|| "My computer".to_owned())
}

impl Node {
    /// This device's name, as the user set it.
    pub async fn device_name(&self) -> Result<Option<String>, NodeError> {
        self.with_vaults_read(|s| {
            let me = s.keys.node_id();
            Ok(names_of(s, [me])?.remove(&me))
        })
        .await
    }

    /// Name this device: a signed claim on its chain, which its other
    /// devices take at their next sync (they are told now). The same name
    /// again changes nothing.
    pub async fn set_device_name(&self, name: String) -> Result<(), NodeError> {
        let name = device_name(&name).map_err(|_| {
            NodeError::Invalid(
                "A device name is 1 to 64 characters on one line, like “Laptop”.".into(),
            )
        })?;
        let named = self
            .with_vaults(move |s| {
                let me = s.keys.node_id();
                let chain = Sigchain::new(&s.db, me);
                let claims = chain.claims()?;
                let names: Vec<String> = names_on(&claims).collect();
                if names.last() == Some(&name) {
                    return Ok(false);
                }
                if names.len() >= MAX_RENAMES {
                    return Err(NodeError::Invalid(format!(
                        "This device has been renamed {MAX_RENAMES} times, the most it may be; \
                         it keeps the name “{}”.",
                        names.last().map_or("", String::as_str)
                    )));
                }
                let now = u64::try_from(crate::peers::now_ms()).unwrap_or_default();
                let mut payload = chain.next_payload(ClaimType::ClaimNameNode, me, now)?;
                payload.name = Some(name);
                chain.append(&SignedClaim::issue(&payload, &s.keys)?)?;
                Ok(true)
            })
            .await?;
        if named {
            self.notify();
        }
        Ok(())
    }
}
