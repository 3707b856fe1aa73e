//! Trust kept in step across the gestalt: each pull first takes the new
//! claims of the gestalt's chains (links and revocations, checked claim by
//! claim outside the node's state lock), a device another device added is
//! shown at once, and removing a device is a signed revocation on this
//! node's chain that every device obeys.

use std::collections::BTreeMap;

use polykey_gestalts::{
    verify_continuation, ChainClaims, ClaimType, GestaltGraph, Judgement, MemberChains, Sigchain,
    SignedClaim,
};
use polykey_keys::NodeId;
use polykey_network::protocol::{MAX_CHAINS, MAX_CHAIN_CLAIMS};
use polykey_network::{ChainPosition, ChainUpdate, Client, Request, Response};
use polykey_vaults::{Removed, Vaults};

use super::{net_error, now_ms, now_secs, refused, Node};
use crate::error::NodeError;

/// A device another device of the gestalt added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNotice {
    /// The new device.
    pub device: NodeId,
    /// The device whose chain links it.
    pub added_by: NodeId,
    /// When the link was made, ms since the epoch.
    pub added_at: i64,
}

/// A device out here because devices removed each other: neither is
/// trusted until the user removes, here, the one they distrust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDispute {
    /// The device.
    pub device: NodeId,
    /// The name it gave itself, if known.
    pub name: Option<String>,
    /// The devices in the dispute that removed it.
    pub removed_by: Vec<NodeId>,
    /// When the latest of them did, ms since the epoch.
    pub at: i64,
}

/// A device out here that another device removed: removing that one lets
/// it back unless the user removes it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedDevice {
    /// The device.
    pub device: NodeId,
    /// The name it gave itself, if known.
    pub name: Option<String>,
    /// Whether it is in a dispute (devices that removed each other): then
    /// removing the other is how the user lets it back.
    pub disputed: bool,
}

/// What removing a device here would change: who comes back (its removals
/// end with it) and who goes with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovalEffect {
    /// Devices out that would come back unless removed too.
    pub back: Vec<RemovedDevice>,
    /// Devices that would go with it (joined to this one only through it,
    /// or removed by a device coming back); never in a dispute.
    pub going: Vec<RemovedDevice>,
}

/// Verify each chain update against the head of our copy it continues;
/// a chain that does not verify is left out. On several threads when there
/// are many (a new device takes every member's chain at once).
fn verify_chains(
    work: Vec<(ChainUpdate, Option<polykey_gestalts::ChainHead>)>,
    now: u64,
) -> Vec<ChainClaims> {
    let one = |(update, head): (ChainUpdate, Option<polykey_gestalts::ChainHead>)| {
        verify_continuation(&update.node, head.as_ref(), &update.claims, now)
            .ok()
            .map(|claims| (update.node, head, claims))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let claims: usize = work.iter().map(|(u, _)| u.claims.len()).sum();
    if threads < 2 || claims < 16 {
        return work.into_iter().filter_map(one).collect();
    }
    let chunk = work.len().div_ceil(threads);
    let mut parts: Vec<Vec<_>> = Vec::new();
    let mut work = work.into_iter();
    loop {
        let part: Vec<_> = work.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().filter_map(one).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

impl Node {
    /// Take the new claims of `peer`'s copies of the gestalt's chains and
    /// adopt the links and revocations they hold. Returns whether the
    /// gestalt changed.
    pub(super) async fn pull_chains(
        &self,
        client: &Client,
        peer: NodeId,
    ) -> Result<bool, NodeError> {
        let (me, known) = self
            .with_vaults(|s| {
                let me = s.keys.node_id();
                let mut known: Vec<ChainPosition> = MemberChains::new(&s.db)
                    .positions()?
                    .into_iter()
                    .map(|(node, seq)| ChainPosition { node, seq })
                    .collect();
                known.truncate(MAX_CHAINS);
                Ok((me, known))
            })
            .await?;
        let updates = match client
            .request(peer, Request::Chains { known })
            .await
            .map_err(net_error)?
        {
            Response::Chains(updates) => updates,
            other => return Err(refused(other)),
        };
        if updates.len() > MAX_CHAINS
            || updates.iter().map(|u| u.claims.len()).sum::<usize>() > MAX_CHAIN_CLAIMS
        {
            return Err(NodeError::BadPeerData("too many claims sent".into()));
        }
        let updates: Vec<_> = updates.into_iter().filter(|u| u.node != me).collect();
        if updates.is_empty() {
            return Ok(false);
        }
        let nodes: Vec<NodeId> = updates.iter().map(|u| u.node).collect();
        let heads = self
            .with_vaults(move |s| {
                let copies = MemberChains::new(&s.db);
                nodes
                    .iter()
                    .map(|n| Ok(copies.head(n)?))
                    .collect::<Result<Vec<_>, NodeError>>()
            })
            .await?;
        // Signatures are checked here, on the blocking pool but outside the
        // node's state lock: one check per new claim.
        let now = now_secs();
        let verified: Vec<ChainClaims> = tokio::task::spawn_blocking(move || {
            let work: Vec<_> = updates.into_iter().zip(heads).collect();
            verify_chains(work, now)
        })
        .await
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let adopted = self
            .with_vaults(move |s| {
                let all = GestaltGraph::new(&s.db).adopt_chains(
                    me,
                    &MemberChains::new(&s.db),
                    verified,
                )?;
                for device in &all.noticed {
                    crate::notifications::keep_local(
                        s,
                        me,
                        format!(
                            "A device was added to your devices: {device}. \
                             Keep it, or remove it with `polykey nodes revoke {device}`."
                        ),
                    )?;
                }
                // (The devices `disputes` lists: every disputed node but
                // this one, as `all.disputed` holds them.)
                if !all.disputed.is_empty() {
                    let shown: Vec<String> = all.disputed.iter().map(ToString::to_string).collect();
                    crate::notifications::keep_local(
                        s,
                        me,
                        format!(
                            "Some of your devices removed each other: {}. This device \
                             trusts none of them until you remove here each one you do \
                             not have (`polykey nodes disputes`).",
                            shown.join(", ")
                        ),
                    )?;
                }
                for device in &all.removed_me {
                    crate::notifications::keep_local(
                        s,
                        me,
                        format!(
                            "Your device {device} removed this device. If that was not you, \
                             remove {device} here: your other devices then show the two as \
                             devices that removed each other, to decide there too."
                        ),
                    )?;
                }
                for device in &all.revoked {
                    crate::notifications::keep_local(
                        s,
                        me,
                        format!(
                            "Another of your devices removed {device} from your devices. \
                             If that was not you, remove the device that did it."
                        ),
                    )?;
                }
                Ok(all)
            })
            .await?;
        if adopted.changed() {
            self.refresh_members().await?;
            self.notify();
        }
        Ok(adopted.changed())
    }

    /// Remove `device` from this gestalt for good: a signed revocation on
    /// this node's chain, which every device of the gestalt obeys on its
    /// next sync. The device keeps what it already has; only a new pairing
    /// brings it back.
    pub async fn revoke_device(&self, device: NodeId) -> Result<(), NodeError> {
        self.with_vaults(move |s| {
            let me = s.keys.node_id();
            if device == me {
                return Err(NodeError::Invalid(
                    "this device cannot remove itself; remove it from another device".into(),
                ));
            }
            let chain = Sigchain::new(&s.db, me);
            // Who stands does not depend on removals' dates (a thief's
            // answer dated ahead wins nothing), but a link newer than a
            // removal, made by a device that stands, undoes it (a fresh
            // pairing): a thief links a puppet dated ahead (as far as
            // clocks may differ) so that the user's removal of it, dated
            // now, is dropped wherever the thief still stands. The removal
            // is dated after every link of the device held here.
            let mut payload =
                chain.next_payload(ClaimType::ClaimRevokeNode, device, now_ms() as u64)?;
            let linked = GestaltGraph::new(&s.db)
                .link_claims()?
                .iter()
                .filter_map(|claim| claim.decode().ok())
                .filter(|p| p.iss == device || p.sub == device)
                .map(|p| p.iat)
                .max();
            if let Some(linked) = linked {
                if linked >= payload.iat {
                    payload.iat = linked.saturating_add(1);
                    payload.nbf = payload.iat;
                }
            }
            // What this device has seen of each vault: the removed device's
            // commits outside it are undone wherever they turn up.
            let mut heads = BTreeMap::new();
            let vaults = Vaults::new(&s.db);
            for (info, head, _) in vaults
                .list_for_sync()?
                .into_iter()
                .take(polykey_gestalts::claims::MAX_REVOCATION_HEADS)
            {
                heads.insert(info.id.to_string(), head);
            }
            payload.heads = Some(heads);
            let claim = SignedClaim::issue(&payload, &s.keys)?;
            chain.append(&claim)?;
            let graph = GestaltGraph::new(&s.db);
            graph.revoke(me, &claim)?;
            graph.dismiss_notice(&device)?;
            Ok(())
        })
        .await?;
        self.refresh_members().await?;
        self.inner.peer_state().online.remove(&device);
        self.notify();
        // People sharing vaults with this gestalt stop serving it now.
        let _ = self.tell_owners_of_removal(device).await;
        Ok(())
    }

    /// Keep every vault in line with the removals in force: what a removed
    /// device committed outside the version its remover had is undone, and
    /// undone work of a device no longer removed comes back (see
    /// [`polykey_vaults::Vault::undo_removed`]). Returns whether a vault
    /// changed. Nothing to do, and nothing read, while nobody was ever
    /// removed.
    pub(super) async fn settle_removed(&self) -> Result<bool, NodeError> {
        self.with_vaults(|s| {
            let graph = GestaltGraph::new(&s.db);
            let all = graph.revocations()?;
            if all.is_empty() {
                return Ok(false);
            }
            let me = s.keys.node_id();
            let Judgement {
                members,
                in_force,
                disputed,
            } = graph.judgement(me)?;
            // Undo commits count only from this gestalt's devices.
            let member_texts: std::collections::BTreeSet<String> =
                members.iter().map(ToString::to_string).collect();
            let trusted = |author: &str| member_texts.contains(author);
            let once: std::collections::BTreeSet<String> =
                all.iter().map(|r| r.node.to_string()).collect();
            let once_removed = |device: &str| once.contains(device);
            // Each removed node, judged by the vault versions of the
            // earliest removal of it by a standing device that names them
            // (what it did after that removal, while in a dispute say, is
            // undone, whatever a later removal's versions hold); with none
            // (a device in a dispute), held: what was undone stays,
            // nothing more is: so for every device in a dispute, and every
            // node once removed that is no device now (a puppet the thief
            // removed, once the thief is out: what was undone of it came
            // back).
            let counted: std::collections::BTreeSet<NodeId> =
                in_force.iter().map(|r| r.node).collect();
            let held: std::collections::BTreeSet<NodeId> = disputed
                .into_iter()
                .chain(all.iter().map(|r| r.node))
                .filter(|n| !counted.contains(n) && !members.contains(n))
                .collect();
            let held = held.into_iter().map(|n| Ok((n, None)));
            let seen: Vec<(NodeId, Option<BTreeMap<String, String>>)> = in_force
                .into_iter()
                .map(|counted| {
                    // Only the chosen removal's claim is read.
                    let heads = all
                        .iter()
                        .filter(|r| r.node == counted.node && members.contains(&r.by))
                        .filter(|r| r.names_heads)
                        .min_by_key(|r| (r.at, r.by))
                        .map(|r| graph.revocation_claim(me, r))
                        .transpose()?
                        .flatten()
                        .and_then(|(payload, _)| payload.heads);
                    Ok((counted.node, heads))
                })
                .chain(held)
                .collect::<Result<_, NodeError>>()?;
            let vaults = Vaults::new(&s.db);
            let mut changed = false;
            for (info, _, _) in vaults.list_for_sync()? {
                let id = info.id.to_string();
                let removed: Vec<Removed> = seen
                    .iter()
                    .map(|(node, heads)| Removed {
                        node: *node,
                        seen: heads.as_ref().and_then(|h| h.get(&id).cloned()),
                        hold: heads.is_none(),
                    })
                    .collect();
                // One vault that cannot be settled holds up neither the
                // others nor the pull.
                let Ok(vault) = vaults.open_any(&info.id) else {
                    continue;
                };
                if let Ok(head) =
                    vault.undo_removed(&s.db, &s.keys, &removed, &trusted, &once_removed)
                {
                    changed |= head.is_some();
                }
            }
            Ok(changed)
        })
        .await
    }

    /// Devices other devices added, not yet kept or removed here.
    pub async fn device_notices(&self) -> Result<Vec<DeviceNotice>, NodeError> {
        self.with_vaults(|s| {
            Ok(GestaltGraph::new(&s.db)
                .notices(s.keys.node_id())?
                .into_iter()
                .map(|n| DeviceNotice {
                    device: n.device,
                    added_by: n.added_by,
                    added_at: (n.added_at as i64).saturating_mul(1000),
                })
                .collect())
        })
        .await
    }

    /// Devices that removed each other, as this device sees it: each is
    /// out here until the user removes the one they distrust.
    pub async fn device_disputes(&self) -> Result<Vec<DeviceDispute>, NodeError> {
        self.with_vaults(|s| {
            let disputes = GestaltGraph::new(&s.db).disputes(s.keys.node_id())?;
            let mut names = crate::names::names_of(s, disputes.iter().map(|d| d.device))?;
            Ok(disputes
                .into_iter()
                .map(|d| DeviceDispute {
                    device: d.device,
                    name: names.remove(&d.device),
                    removed_by: d.removed_by,
                    at: (d.at as i64).saturating_mul(1000),
                })
                .collect())
        })
        .await
    }

    /// What removing `device` here would change: the devices out that it
    /// removed come back (a removed device's removals count for nothing)
    /// unless the user removes them too — a retired laptop's removal of a
    /// stolen tablet must not end with the laptop; a thief's removal of
    /// the user's phone must — and devices joined to this one only through
    /// it go with it.
    pub async fn removal_effect(&self, device: NodeId) -> Result<RemovalEffect, NodeError> {
        self.with_vaults(move |s| {
            let effect = GestaltGraph::new(&s.db).removal_effect(s.keys.node_id(), device)?;
            let named = effect
                .back
                .iter()
                .map(|(n, _)| *n)
                .chain(effect.going.iter().copied());
            let mut names = crate::names::names_of(s, named)?;
            let mut one = |device: NodeId, disputed: bool| RemovedDevice {
                device,
                name: names.remove(&device),
                disputed,
            };
            let back = effect.back.into_iter().map(|(n, d)| one(n, d)).collect();
            let going = effect.going.into_iter().map(|n| one(n, false)).collect();
            Ok(RemovalEffect { back, going })
        })
        .await
    }

    /// [`Node::removal_effect`] by NodeId text, in transport form.
    pub async fn removal_effect_dto(
        &self,
        device: String,
    ) -> Result<crate::api::RemovalEffectDto, NodeError> {
        let effect = self.removal_effect(parse_node(&device)?).await?;
        let dto = |d: RemovedDevice| crate::api::RemovedDeviceDto {
            device: d.device.to_string(),
            name: d.name,
            disputed: d.disputed,
        };
        Ok(crate::api::RemovalEffectDto {
            back: effect.back.into_iter().map(dto).collect(),
            going: effect.going.into_iter().map(dto).collect(),
        })
    }

    /// Devices that removed each other, in transport form.
    pub async fn device_disputes_dto(
        &self,
    ) -> Result<Vec<crate::api::DeviceDisputeDto>, NodeError> {
        Ok(self
            .device_disputes()
            .await?
            .into_iter()
            .map(|d| crate::api::DeviceDisputeDto {
                device: d.device.to_string(),
                name: d.name,
                removed_by: d.removed_by.iter().map(ToString::to_string).collect(),
                at: d.at,
            })
            .collect())
    }

    /// Keep a device another device added: its notice goes away.
    pub async fn keep_device(&self, device: NodeId) -> Result<(), NodeError> {
        self.with_vaults(move |s| {
            GestaltGraph::new(&s.db).dismiss_notice(&device)?;
            Ok(())
        })
        .await?;
        self.notify();
        Ok(())
    }

    /// Devices added by other devices, in transport form.
    pub async fn device_notices_dto(&self) -> Result<Vec<crate::api::DeviceNoticeDto>, NodeError> {
        Ok(self
            .device_notices()
            .await?
            .into_iter()
            .map(|n| crate::api::DeviceNoticeDto {
                device: n.device.to_string(),
                added_by: n.added_by.to_string(),
                added_at: n.added_at,
            })
            .collect())
    }

    /// Keep a device, by its NodeId text.
    pub async fn keep_device_text(&self, device: String) -> Result<(), NodeError> {
        self.keep_device(parse_node(&device)?).await
    }

    /// Remove a device for good, by its NodeId text.
    pub async fn revoke_device_text(&self, device: String) -> Result<(), NodeError> {
        self.revoke_device(parse_node(&device)?).await
    }
}

fn parse_node(text: &str) -> Result<NodeId, NodeError> {
    text.trim()
        .parse()
        .map_err(|_| NodeError::Invalid("not a NodeId".into()))
}
