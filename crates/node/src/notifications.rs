//! Notifications: short signed messages between nodes. A node keeps those
//! from devices of its gestalt and from people trusted with `notify` (see
//! `people`), sealed in its store, newest 1,000, and drops the rest; the
//! sender's signature and the transport must agree on who sent it.

use polykey_db::{RecordKey, Table};
use polykey_keys::{NodeId, Signature};
use polykey_network::protocol::MAX_NOTIFICATION_BYTES;
use polykey_network::{Request, Response, SignedNotification};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::error::NodeError;
use crate::node::Node;
use crate::node::Session;
use crate::peers::{clamp_peer_time, gestalt, now_ms};

/// Most notifications kept.
const KEEP: usize = 1_000;

/// A notification as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Who sent it.
    pub from: NodeId,
    /// When, ms since the epoch (the sender's clock).
    pub sent_at: i64,
    /// The message.
    pub text: String,
    /// Whether it was read here.
    #[serde(default)]
    pub read: bool,
    /// A vault offered with it (accept with `Node::accept_share`).
    #[serde(default)]
    pub share: Option<ShareOffer>,
}

/// A vault another person shares with this node's gestalt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareOffer {
    /// The vault's id.
    pub vault: String,
    /// The owner's name for it.
    pub name: String,
    /// Whether this gestalt may write.
    pub write: bool,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    from: NodeId,
    to: NodeId,
    sent_at: i64,
    text: String,
    #[serde(default)]
    share: Option<ShareOffer>,
}

const NOTIFICATIONS: Table<Notification> = Table::new("notifications");

/// Keep `notification`, dropping beyond [`KEEP`] the oldest of the sender
/// with the most kept (the new one counted): one who may notify and sends
/// a thousand pushes out only their own, never another's share offer or
/// a device's news.
fn keep(s: &Session, notification: Notification) -> Result<(), NodeError> {
    let mut txn = s.db.write()?;
    let mut all = txn.entries(&NOTIFICATIONS)?;
    all.sort_by_key(|(_, n)| n.sent_at);
    if all.len() >= KEEP {
        let mut counts: HashMap<NodeId, usize> = HashMap::new();
        for (_, kept) in &all {
            *counts.entry(kept.from).or_default() += 1;
        }
        *counts.entry(notification.from).or_default() += 1;
        while all.len() >= KEEP {
            // The oldest of the sender with the most kept (the new one's
            // sender first on a tie); with one each, the oldest of all.
            let most = counts
                .iter()
                .max_by_key(|(from, n)| (**n, **from == notification.from));
            let oldest = match most {
                Some((&most, &n)) if n > 1 => all.iter().position(|(_, k)| k.from == most),
                _ => None,
            };
            let (key, gone) = all.remove(oldest.unwrap_or(0));
            txn.delete(&NOTIFICATIONS, &key)?;
            if let Some(n) = counts.get_mut(&gone.from) {
                *n -= 1;
            }
        }
    }
    txn.put(&NOTIFICATIONS, &RecordKey::random(), &notification)?;
    txn.commit()?;
    Ok(())
}

/// Keep a notification this node writes for its own user (a device added
/// by another device, say), as from `from`.
pub(crate) fn keep_local(s: &Session, from: NodeId, text: String) -> Result<(), NodeError> {
    keep(
        s,
        Notification {
            from,
            sent_at: now_ms(),
            text,
            read: false,
            share: None,
        },
    )
}

impl Node {
    /// Send `text` to `peer` (a device of the gestalt, or a node of a person
    /// who lets this one notify them; reachable now).
    pub async fn send_notification(&self, peer: NodeId, text: String) -> Result<(), NodeError> {
        self.send_signed(peer, text, None).await
    }

    /// Offer `peer` (a node of a person) the vault in `offer`.
    pub(crate) async fn send_share_offer(
        &self,
        peer: NodeId,
        text: String,
        offer: ShareOffer,
    ) -> Result<(), NodeError> {
        self.send_signed(peer, text, Some(offer)).await
    }

    async fn send_signed(
        &self,
        peer: NodeId,
        text: String,
        share: Option<ShareOffer>,
    ) -> Result<(), NodeError> {
        if text.len() > MAX_NOTIFICATION_BYTES / 2 {
            return Err(NodeError::PeerRefused("that message is too long".into()));
        }
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let payload = serde_json::to_vec(&Payload {
            from: me,
            to: peer,
            sent_at: now_ms(),
            text,
            share,
        })
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let signature = self.sign(payload.clone()).await?.0.to_vec();
        self.ping(peer).await?;
        let request = Request::Notify(SignedNotification { payload, signature });
        match self.network_request(peer, request).await? {
            Response::Ok => Ok(()),
            Response::Refused(reason) => Err(NodeError::PeerRefused(reason)),
            _ => Err(NodeError::PeerRefused("an unexpected answer".into())),
        }
    }

    /// Check and keep a notification from `peer`.
    pub(crate) async fn receive_notification(
        &self,
        peer: NodeId,
        signed: SignedNotification,
    ) -> Result<Response, NodeError> {
        let refuse = |why: &str| Ok(Response::Refused(why.to_owned()));
        if signed.payload.len() > MAX_NOTIFICATION_BYTES {
            return refuse("notification too large");
        }
        let Ok(payload) = serde_json::from_slice::<Payload>(&signed.payload) else {
            return refuse("malformed notification");
        };
        let Ok(signature) = <[u8; 64]>::try_from(signed.signature.as_slice()) else {
            return refuse("malformed signature");
        };
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        if payload.from != peer
            || payload.to != me
            || polykey_keys::root::verify(&peer, &signed.payload, &Signature(signature)).is_err()
        {
            return refuse("the notification's signature does not match its sender");
        }
        let stored = self
            .with_vaults(move |s| {
                let members = gestalt(s)?;
                if !members.contains(&peer) && !crate::people::may_notify_in(s)?.contains(&peer) {
                    // Dropped: only devices of this gestalt, and people
                    // trusted with `notify`, may notify.
                    return Ok(false);
                }
                keep(
                    s,
                    Notification {
                        from: payload.from,
                        // A sender's clock may run ahead, not pin a message
                        // to the top of the list forever.
                        sent_at: clamp_peer_time(payload.sent_at),
                        text: payload.text,
                        read: false,
                        share: payload.share,
                    },
                )?;
                Ok(true)
            })
            .await?;
        if stored {
            self.notify();
            Ok(Response::Ok)
        } else {
            refuse("not accepted")
        }
    }

    /// The notifications kept here, newest first; marks them read.
    pub async fn read_notifications(
        &self,
        unread_only: bool,
    ) -> Result<Vec<Notification>, NodeError> {
        self.with_vaults(move |s| {
            let mut txn = s.db.write()?;
            let mut all = txn.entries(&NOTIFICATIONS)?;
            all.sort_by_key(|(_, n)| std::cmp::Reverse(n.sent_at));
            let mut out = Vec::new();
            for (key, mut notification) in all {
                if unread_only && notification.read {
                    continue;
                }
                out.push(notification.clone());
                if !notification.read {
                    notification.read = true;
                    txn.put(&NOTIFICATIONS, &key, &notification)?;
                }
            }
            txn.commit()?;
            Ok(out)
        })
        .await
    }

    /// Decline the share of vault `vault` (its id): its offers are
    /// dropped. Returns how many.
    pub async fn dismiss_share(&self, vault: String) -> Result<usize, NodeError> {
        self.with_vaults(move |s| {
            let mut txn = s.db.write()?;
            let mut dropped = 0;
            for (key, notification) in txn.entries(&NOTIFICATIONS)? {
                if notification
                    .share
                    .as_ref()
                    .is_some_and(|o| o.vault == vault)
                {
                    txn.delete(&NOTIFICATIONS, &key)?;
                    dropped += 1;
                }
            }
            txn.commit()?;
            Ok(dropped)
        })
        .await
    }

    /// Delete every notification.
    pub async fn clear_notifications(&self) -> Result<usize, NodeError> {
        self.with_vaults(|s| {
            let mut txn = s.db.write()?;
            let all = txn.entries(&NOTIFICATIONS)?;
            for (key, _) in &all {
                txn.delete(&NOTIFICATIONS, key)?;
            }
            txn.commit()?;
            Ok(all.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn from(seed: u8, text: &str, sent_at: i64) -> Notification {
        Notification {
            from: polykey_keys::RootKeypair::from_seed(&[seed; 32]).node_id(),
            sent_at,
            text: text.into(),
            read: false,
            share: None,
        }
    }

    /// One who may notify sends more than are kept, dated ahead: only
    /// their own are pushed out.
    #[tokio::test]
    async fn a_flood_of_notifications_pushes_out_only_the_senders_own() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::test_node(dir.path(), "correct horse battery").await;
        let now = now_ms();
        node.with_vaults(move |s| {
            keep(s, from(1, "the offer", now - 60_000))?;
            keep(s, from(2, "a device was added", now - 30_000))?;
            for i in 0..KEEP + 20 {
                keep(s, from(3, &format!("flood {i}"), now + 600_000))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let kept = node.read_notifications(false).await.unwrap();
        assert_eq!(kept.len(), KEEP);
        for text in [
            "the offer",
            "a device was added",
            &format!("flood {}", KEEP + 19),
        ] {
            assert!(
                kept.iter().any(|n| n.text == *text),
                "{text} was pushed out"
            );
        }
    }
}
