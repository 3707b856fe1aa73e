//! Pairing a new device, both sides. Nothing is recorded on either device
//! until its person confirmed that both screens show the same digits: the
//! joiner sends its proof only after its person confirmed; the inviter
//! checks the proof, shows the digits, and answers "waiting" until its own
//! person confirmed. A cancel on either side ends the pairing with no link.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polykey_gestalts::pairing::{
    Invitation, Inviter, Joiner, PairingError, PairingMessage, CODE_WORDS,
};
use polykey_gestalts::{GestaltGraph, Sigchain};
use polykey_keys::NodeId;
use polykey_network::{Client, Multiaddr, Request, Response};

use super::{gestalt, net_error, now_secs, refused, upgrade, Node, PairingState};
use crate::error::NodeError;

/// What an inviter without an open invitation answers a hello.
const NO_INVITATION: &str = "no pairing code is open";
/// How soon a joiner asks again while the inviting device's person has
/// not confirmed yet: at first at once (both people often confirm within a
/// moment of each other), then less and less often, so a person who takes
/// a minute to compare the digits costs a few hundred requests, not
/// thousands.
const CONFIRM_POLL_FIRST: Duration = Duration::from_millis(5);
/// The longest pause between two such asks: the most a person waits for
/// the pairing to end after both confirmed.
const CONFIRM_POLL_MAX: Duration = Duration::from_millis(250);
/// Tries at reaching the inviter and saying hello (see [`Node::join`]).
const JOIN_ATTEMPTS: u32 = 3;

/// A join waiting for this device's person to compare the digits.
pub(crate) struct PendingJoin {
    inviter: NodeId,
    joiner: Joiner,
    proof: PairingMessage,
    addresses: Vec<String>,
    expires_at: u64,
}

impl PendingJoin {
    /// Whether the code it came from has expired at `now` (seconds).
    pub(crate) fn expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// When a join started at `now` ends at the latest: the code's own expiry,
/// which is the code's to say (a stranger's crafted code says "never", and
/// would keep it exempt from the limits for strangers for good), held to
/// a code's lifetime.
fn join_deadline(code_expires_at: u64, now: u64) -> u64 {
    code_expires_at.min(now.saturating_add(polykey_gestalts::pairing::CODE_LIFETIME_SECS))
}

/// Whether `text` is four words, as typed from another device's screen.
fn looks_like_words(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words.len() == CODE_WORDS
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
}

async fn ask_pairing(
    client: &Client,
    peer: NodeId,
    message: PairingMessage,
) -> Result<PairingMessage, NodeError> {
    match client
        .request(peer, Request::Pairing(message))
        .await
        .map_err(net_error)?
    {
        Response::Pairing(answer) => Ok(answer),
        Response::Refused(reason) => Err(NodeError::PeerRefused(reason)),
        _ => Err(NodeError::PeerRefused("an unexpected answer".into())),
    }
}

impl Node {
    /// Open an invitation for a new device: the code to show as a QR code
    /// or text (with this device's addresses), valid ten minutes, once.
    /// A new invitation replaces an open one.
    pub async fn invite(&self) -> Result<Invitation, NodeError> {
        let mut addresses = self.addresses().await?;
        // Unspecified addresses cannot be dialled; expanded ones are listed.
        addresses.retain(|a| !a.contains("/0.0.0.0/") && !a.contains("/::/"));
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let inviter = Inviter::new(me, addresses, now_secs());
        let invitation = inviter.invitation().clone();
        let mut state = self.inner.peer_state();
        state.inviter = Some(inviter);
        state.pairing_with = None;
        state.sessions.clear();
        state.proofs.clear();
        state.confirmed = None;
        state.pairing = Some(PairingState::Waiting {
            expires_at: invitation.expires_at,
        });
        drop(state);
        self.notify();
        Ok(invitation)
    }

    /// Close the open invitation.
    pub fn cancel_invitation(&self) {
        {
            let mut state = self.inner.peer_state();
            state.inviter = None;
            state.sessions.clear();
            state.proofs.clear();
            state.confirmed = None;
            state.pairing = None;
        }
        // Front ends learn the code is void (a copied one leaves the
        // clipboard).
        self.notify();
    }

    /// The open invitation's code while it waits for a device, to copy
    /// (as a secret: it admits a device until it is used or expires);
    /// [`PairingError::Expired`] once it no longer waits.
    pub fn pairing_code(&self) -> Result<zeroize::Zeroizing<String>, NodeError> {
        let closed = || NodeError::Pairing(PairingError::Expired);
        if !matches!(self.pairing_state(), PairingState::Waiting { .. }) {
            return Err(closed());
        }
        let state = self.inner.peer_state();
        state
            .inviter
            .as_ref()
            .map(|inviter| zeroize::Zeroizing::new(inviter.invitation().to_code()))
            .ok_or_else(closed)
    }

    /// What became of the open invitation.
    pub fn pairing_state(&self) -> PairingState {
        let state = self.inner.peer_state();
        let expired = state
            .inviter
            .as_ref()
            .is_some_and(|i| now_secs() >= i.invitation().expires_at);
        match &state.pairing {
            Some(PairingState::Waiting { expires_at }) if now_secs() >= *expires_at => {
                PairingState::Failed("the pairing code expired".into())
            }
            Some(PairingState::Confirming { .. }) if expired => {
                PairingState::Failed("the pairing code expired".into())
            }
            Some(p) => p.clone(),
            None => PairingState::Idle,
        }
    }

    /// The inviting device's person compared the digits: `accept` when
    /// they match (the pairing then completes), otherwise the pairing ends
    /// and nothing is recorded.
    pub fn confirm_pairing(&self, accept: bool) -> Result<(), NodeError> {
        self.confirm_pairing_of(accept, None)
    }

    /// [`Node::confirm_pairing`] of the digits the person was shown: when
    /// `shown` is given and is not what the device waiting shows (the
    /// person answered before any digits were on the screen), nothing is
    /// accepted and the pairing waits on.
    pub fn confirm_pairing_of(&self, accept: bool, shown: Option<&str>) -> Result<(), NodeError> {
        let mut state = self.inner.peer_state();
        let Some(PairingState::Confirming {
            device,
            fingerprint,
        }) = state.pairing.clone()
        else {
            return Err(NodeError::Invalid(
                "no device is waiting for its digits to be confirmed".into(),
            ));
        };
        if accept && shown.is_some_and(|shown| shown != fingerprint) {
            return Err(NodeError::Invalid(
                "these are not the digits the joining device shows; compare them again".into(),
            ));
        }
        if accept {
            state.confirmed = Some(device);
        } else {
            state.inviter = None;
            state.sessions.clear();
            state.proofs.clear();
            state.confirmed = None;
            state.pairing = Some(PairingState::Failed(
                "pairing cancelled: the digits did not match".into(),
            ));
        }
        drop(state);
        self.notify();
        Ok(())
    }

    /// Start joining the gestalt of the device showing `code` (an
    /// invitation as text, the text of its QR code, or its four words).
    /// Returns the inviter and the digits both screens show; nothing is
    /// recorded until [`Node::confirm_join`].
    pub async fn join(&self, code: &str) -> Result<(NodeId, String), NodeError> {
        let joined = self.join_any(code).await;
        if joined.is_err() {
            self.end_pairing_exemption().await;
        }
        joined
    }

    /// The device this one paired with (or failed to) is a stranger again
    /// to the network's limits, unless it is a device now.
    async fn end_pairing_exemption(&self) {
        self.inner.peer_state().pairing_with = None;
        self.refresh_trust().await;
    }

    async fn join_any(&self, code: &str) -> Result<(NodeId, String), NodeError> {
        let trimmed = code.trim();
        if !trimmed.starts_with("polykey-pair:") && looks_like_words(trimmed) {
            return self.join_with_words(trimmed).await;
        }
        let invitation = Invitation::from_code(code)?;
        if now_secs() >= invitation.expires_at {
            return Err(PairingError::Expired.into());
        }
        // A connection lost in the first steps (a node flooded by strangers
        // may close a newcomer's connection before it says hello) is tried
        // again; a refusal is final.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.join_invitation(&invitation).await {
                Err(NodeError::Network(_)) if attempt < JOIN_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// One attempt at joining with the full invitation: reach the inviter,
    /// then the key agreement.
    async fn join_invitation(
        &self,
        invitation: &Invitation,
    ) -> Result<(NodeId, String), NodeError> {
        let client = self.client()?;
        let inviter = invitation.inviter;
        // Trusted before the connection is made, so that its windows may
        // grow: the first sync brings the inviter's vaults over it.
        self.inner.peer_state().pairing_with = Some(inviter);
        self.refresh_trust().await;
        let mut reached = false;
        let mut last = None;
        for address in &invitation.addresses {
            let Ok(address) = address.parse::<Multiaddr>() else {
                continue;
            };
            match client.dial(inviter, address).await {
                Ok(()) => {
                    reached = true;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if !reached {
            let found = self.inner.peer_state().discovered.get(&inviter).cloned();
            if let Some(address) = found {
                reached = client.dial(inviter, address).await.is_ok();
            }
        }
        if !reached {
            return Err(match last {
                Some(e) => net_error(e),
                None => NodeError::Network("the inviting device gave no address".into()),
            });
        }
        self.start_join(
            &client,
            inviter,
            invitation.words(),
            invitation.secret(),
            invitation.addresses.clone(),
            invitation.expires_at,
        )
        .await
    }

    /// Join with the four typed words: the inviting device must be one this
    /// node sees (found by mDNS on the local network, or connected).
    async fn join_with_words(&self, words: &str) -> Result<(NodeId, String), NodeError> {
        let client = self.client()?;
        let discovered: Vec<(NodeId, Multiaddr)> = self
            .inner
            .peer_state()
            .discovered
            .iter()
            .map(|(n, a)| (*n, a.clone()))
            .collect();
        let mut candidates: Vec<NodeId> = client.connected().await.map_err(net_error)?;
        for (peer, address) in discovered {
            if !candidates.contains(&peer) && client.dial(peer, address).await.is_ok() {
                candidates.push(peer);
            }
        }
        let members = self.with_vaults(gestalt).await?;
        let expires_at = now_secs() + polykey_gestalts::pairing::CODE_LIFETIME_SECS;
        for inviter in candidates.into_iter().filter(|c| !members.contains(c)) {
            match self
                .start_join(&client, inviter, words, None, Vec::new(), expires_at)
                .await
            {
                // That device shows no code: try the next one.
                Err(NodeError::PeerRefused(reason)) if reason == NO_INVITATION => continue,
                other => return other,
            }
        }
        Err(NodeError::Network(
            "no device nearby is showing a pairing code; paste the whole code instead".into(),
        ))
    }

    /// The key agreement with `inviter`, connected already: on success the
    /// digits to compare, and the proof kept until the person confirms.
    async fn start_join(
        &self,
        client: &Client,
        inviter: NodeId,
        words: &str,
        secret: Option<&str>,
        addresses: Vec<String>,
        expires_at: u64,
    ) -> Result<(NodeId, String), NodeError> {
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let expires_at = join_deadline(expires_at, now_secs());
        self.inner.peer_state().pairing_with = Some(inviter);
        self.refresh_trust().await;
        let (joiner, hello) = Joiner::start(inviter, me, words, secret);
        let challenge = ask_pairing(client, inviter, hello).await?;
        let (joiner, proof) = self
            .with_vaults(move |s| {
                let mut joiner = joiner;
                let chain = Sigchain::new(&s.db, s.keys.node_id());
                let proof = joiner.on_challenge(challenge, &s.keys, &chain, now_secs())?;
                Ok((joiner, proof))
            })
            .await?;
        let fingerprint = joiner.fingerprint().unwrap_or_default();
        // The inviter checks the proof now and shows the digits too, so both
        // screens show them before either person confirms; it records
        // nothing until both did.
        match ask_pairing(client, inviter, proof.clone()).await? {
            PairingMessage::Waiting => {}
            _ => {
                return Err(NodeError::BadPeerData(
                    "the inviting device skipped the confirmation".into(),
                ))
            }
        }
        self.inner.peer_state().joining = Some(PendingJoin {
            inviter,
            joiner,
            proof,
            addresses,
            expires_at,
        });
        // A person who never confirms: the inviter is a stranger again
        // once the code expires.
        let weak = self.weak();
        let left = Duration::from_secs(expires_at.saturating_sub(now_secs()));
        tokio::spawn(async move {
            tokio::time::sleep(left).await;
            if let Some(node) = upgrade(&weak) {
                node.refresh_trust().await;
            }
        });
        Ok((inviter, fingerprint))
    }

    /// The joining device's person compared the digits: `accept` completes
    /// the pairing (waiting, until the code expires, for the other device's
    /// person to confirm too); otherwise the other device hears of the
    /// cancel and nothing is recorded anywhere.
    pub async fn confirm_join(&self, accept: bool) -> Result<(), NodeError> {
        let confirmed = self.finish_join(accept).await;
        self.end_pairing_exemption().await;
        confirmed
    }

    async fn finish_join(&self, accept: bool) -> Result<(), NodeError> {
        let (pending, cancel) = {
            let mut state = self.inner.peer_state();
            match state.joining.take() {
                Some(pending) => {
                    let cancel = Arc::new(AtomicBool::new(false));
                    state.join_cancel = Some(Arc::clone(&cancel));
                    (pending, cancel)
                }
                // Cancelling a join already confirmed and waiting for the
                // other device: its wait ends with a cancel.
                None if !accept && state.join_cancel.is_some() => {
                    if let Some(cancel) = state.join_cancel.take() {
                        cancel.store(true, Ordering::SeqCst);
                    }
                    return Ok(());
                }
                None => {
                    return Err(NodeError::Invalid(
                        "no pairing is waiting for confirmation".into(),
                    ))
                }
            }
        };
        let client = self.client()?;
        let inviter = pending.inviter;
        if !accept {
            self.inner.peer_state().join_cancel = None;
            let _ = ask_pairing(&client, inviter, PairingMessage::Cancel).await;
            return Ok(());
        }
        let mut pause = CONFIRM_POLL_FIRST;
        let waited = loop {
            if cancel.load(Ordering::SeqCst) {
                let _ = ask_pairing(&client, inviter, PairingMessage::Cancel).await;
                break Err(NodeError::Invalid("pairing cancelled".into()));
            }
            if now_secs() >= pending.expires_at {
                break Err(PairingError::Expired.into());
            }
            match ask_pairing(&client, inviter, pending.proof.clone()).await {
                Ok(PairingMessage::Waiting) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(CONFIRM_POLL_MAX);
                }
                other => break other,
            }
        };
        self.inner.peer_state().join_cancel = None;
        let claims = waited?;
        let joiner = pending.joiner;
        let done = self
            .with_vaults(move |s| {
                let mut joiner = joiner;
                let chain = Sigchain::new(&s.db, s.keys.node_id());
                Ok(joiner.on_claims(claims, &s.keys, &chain, &GestaltGraph::new(&s.db))?)
            })
            .await?;
        match client
            .request(inviter, Request::Pairing(done))
            .await
            .map_err(net_error)?
        {
            Response::Ok => {}
            other => return Err(refused(other)),
        }
        self.remember_addresses(inviter, pending.addresses, false)
            .await;
        self.refresh_members().await?;
        self.inner.peer_state().online.insert(inviter);
        self.notify();
        self.schedule_sync(inviter);
        Ok(())
    }

    /// A joiner's first step: the challenge, and a session kept for it;
    /// true when the joiner holds the invitation's secret.
    fn take_hello(
        &self,
        peer: NodeId,
        hello: PairingMessage,
    ) -> Result<(PairingMessage, bool), NodeError> {
        let mut state = self.inner.peer_state();
        let inviter = state
            .inviter
            .as_mut()
            .ok_or_else(|| NodeError::PeerRefused(NO_INVITATION.into()))?;
        let holder = match &hello {
            PairingMessage::Hello { secret, .. } => inviter.holds_secret(secret.as_deref()),
            _ => false,
        };
        match inviter.on_hello(hello, now_secs()) {
            Ok((session, challenge)) => {
                state.sessions.insert(peer, session);
                state.proofs.remove(&peer);
                if holder {
                    state.pairing_with = Some(peer);
                }
                Ok((challenge, holder))
            }
            Err(e) => {
                // Only a holder of the full code ends what this
                // screen shows; strangers' guesses do not.
                if holder && !matches!(e, PairingError::Malformed(_)) {
                    state.pairing = Some(PairingState::Failed(e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    pub(super) async fn answer_pairing(
        &self,
        peer: NodeId,
        message: PairingMessage,
    ) -> Result<Response, NodeError> {
        match message {
            PairingMessage::Hello { joiner, .. } if joiner != peer => Err(NodeError::PeerRefused(
                "the hello names another node than the sender".into(),
            )),
            hello @ PairingMessage::Hello { .. } => {
                let (challenge, holder) = self.take_hello(peer, hello)?;
                if holder {
                    self.refresh_trust().await;
                }
                Ok(Response::Pairing(challenge))
            }
            proof @ PairingMessage::Proof { .. } => self.answer_proof(peer, proof).await,
            PairingMessage::Cancel => {
                let mut state = self.inner.peer_state();
                state.sessions.remove(&peer);
                state.proofs.remove(&peer);
                if matches!(&state.pairing, Some(PairingState::Confirming { device, .. }) if *device == peer)
                {
                    state.inviter = None;
                    state.confirmed = None;
                    state.pairing = Some(PairingState::Failed(
                        "pairing cancelled on the other device".into(),
                    ));
                    drop(state);
                    self.notify();
                }
                Ok(Response::Ok)
            }
            done @ PairingMessage::Done { .. } => {
                let session = self
                    .inner
                    .peer_state()
                    .sessions
                    .remove(&peer)
                    .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
                let me = self.status().node_id.ok_or(NodeError::Locked)?;
                let fingerprint = session.fingerprint(&me);
                self.with_vaults(move |s| {
                    let chain = Sigchain::new(&s.db, s.keys.node_id());
                    session.on_done(done, &chain, &GestaltGraph::new(&s.db))?;
                    Ok(())
                })
                .await?;
                {
                    // The used invitation stays, so a second try with the
                    // same code hears that it was used.
                    let mut state = self.inner.peer_state();
                    state.confirmed = None;
                    state.proofs.clear();
                    state.pairing = Some(PairingState::Paired {
                        device: peer,
                        fingerprint,
                    });
                }
                self.refresh_members().await?;
                self.inner.peer_state().online.insert(peer);
                self.notify();
                self.schedule_sync(peer);
                Ok(Response::Ok)
            }
            _ => Err(NodeError::PeerRefused(
                "not a message for the inviter".into(),
            )),
        }
    }

    /// A joiner's proof: checked and shown for confirmation first; once this
    /// device's person confirmed, recorded and answered with the claims.
    async fn answer_proof(
        &self,
        peer: NodeId,
        proof: PairingMessage,
    ) -> Result<Response, NodeError> {
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let shown = {
            let mut guard = self.inner.peer_state();
            let state = &mut *guard;
            let inviter = state
                .inviter
                .as_ref()
                .ok_or_else(|| NodeError::PeerRefused(NO_INVITATION.into()))?;
            let session = state
                .sessions
                .get(&peer)
                .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
            if !state.proofs.contains_key(&peer) {
                if let Err(e) = inviter.check_proof(session, &proof) {
                    if session.holder() && matches!(e, PairingError::WrongCode) {
                        state.pairing = Some(PairingState::Failed(e.to_string()));
                    }
                    state.sessions.remove(&peer);
                    return Err(e.into());
                }
                if matches!(&state.pairing, Some(PairingState::Confirming { device, .. }) if *device != peer)
                {
                    return Err(NodeError::PeerRefused(
                        "another device is pairing; try again shortly".into(),
                    ));
                }
                let fingerprint = session.fingerprint(&me);
                state.proofs.insert(peer, proof);
                state.pairing = Some(PairingState::Confirming {
                    device: peer,
                    fingerprint,
                });
                true
            } else if state.confirmed != Some(peer) {
                return Ok(Response::Pairing(PairingMessage::Waiting));
            } else {
                false
            }
        };
        if shown {
            // The digits are on screen now; the joiner asks again.
            self.notify();
            return Ok(Response::Pairing(PairingMessage::Waiting));
        }
        // Confirmed: record the joiner's link and issue ours.
        let (mut inviter, mut session, proof) = {
            let mut state = self.inner.peer_state();
            let session = state
                .sessions
                .remove(&peer)
                .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
            let proof = state
                .proofs
                .remove(&peer)
                .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
            let inviter = state
                .inviter
                .take()
                .ok_or_else(|| NodeError::PeerRefused(NO_INVITATION.into()))?;
            (inviter, session, proof)
        };
        let (inviter, session, answer) = self
            .with_vaults(move |s| {
                let chain = Sigchain::new(&s.db, s.keys.node_id());
                let graph = GestaltGraph::new(&s.db);
                let answer =
                    inviter.on_proof(&mut session, proof, &s.keys, &chain, &graph, now_secs());
                Ok((inviter, session, answer))
            })
            .await?;
        let mut state = self.inner.peer_state();
        state.inviter = Some(inviter);
        state.pairing_with = None;
        match answer {
            Ok(claims) => {
                state.sessions.insert(peer, session);
                Ok(Response::Pairing(claims))
            }
            Err(e) => {
                state.pairing = Some(PairingState::Failed(e.to_string()));
                Err(e.into())
            }
        }
    }
}

/// Largest picture of a QR code read (bytes).
const MAX_QR_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// The pairing code in a picture of a QR code (PNG or JPEG), as another
/// device's Add device screen shows it.
pub fn code_from_qr_image(bytes: &[u8]) -> Result<String, NodeError> {
    qr_text_from_image(bytes, "polykey-pair:", "pairing")
}

/// The text of the first QR code in a picture that starts with `prefix`
/// (`what` names it in the error).
pub(crate) fn qr_text_from_image(
    bytes: &[u8],
    prefix: &str,
    what: &str,
) -> Result<String, NodeError> {
    let unreadable = || NodeError::Invalid(format!("no {what} QR code found in that picture"));
    if bytes.len() > MAX_QR_IMAGE_BYTES {
        return Err(unreadable());
    }
    let picture = image::load_from_memory(bytes)
        .map_err(|_| unreadable())?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            if text.trim().starts_with(prefix) {
                return Ok(text);
            }
        }
    }
    Err(unreadable())
}

/// The same operations in their transport form, for the front ends.
impl Node {
    /// A new invitation, with its QR code.
    pub async fn invite_dto(&self) -> Result<crate::api::InvitationDto, NodeError> {
        Ok((&self.invite().await?).into())
    }

    /// Start joining with a pasted (or scanned) code: the digits to compare.
    pub async fn join_dto(&self, code: String) -> Result<crate::api::JoinedDto, NodeError> {
        let (device, fingerprint) = self.join(&code).await?;
        Ok(crate::api::JoinedDto {
            device: device.to_string(),
            fingerprint,
        })
    }

    /// Start joining with the QR code in a picture (PNG or JPEG bytes).
    pub async fn join_qr_image_dto(
        &self,
        bytes: Vec<u8>,
    ) -> Result<crate::api::JoinedDto, NodeError> {
        let code = tokio::task::spawn_blocking(move || code_from_qr_image(&bytes))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))??;
        self.join_dto(code).await
    }
}

#[cfg(test)]
mod tests {
    use polykey_keys::RootKeypair;

    use super::*;
    use crate::peers::PeerState;

    /// On the joining side the inviter was exempt from the limits for
    /// strangers until the join ended, so a person who never confirmed
    /// left it exempt until the node locked.
    #[test]
    fn the_device_being_joined_is_exempt_only_until_its_code_expires() {
        let me = RootKeypair::from_seed(&[1; 32]).node_id();
        let inviter = RootKeypair::from_seed(&[2; 32]).node_id();
        let (joiner, _) = Joiner::start(inviter, me, "one two three four", None);
        let state = PeerState {
            pairing_with: Some(inviter),
            joining: Some(PendingJoin {
                inviter,
                joiner,
                proof: PairingMessage::Waiting,
                addresses: Vec::new(),
                expires_at: 1_000,
            }),
            ..PeerState::default()
        };
        assert_eq!(state.exempt(999).0, vec![inviter], "while the code holds");
        assert!(state.exempt(1_000).0.is_empty(), "after it expired");
    }

    #[test]
    fn a_code_that_never_expires_ends_its_join_within_a_codes_lifetime() {
        let lifetime = polykey_gestalts::pairing::CODE_LIFETIME_SECS;
        assert_eq!(join_deadline(u64::MAX, 1_000), 1_000 + lifetime);
        assert_eq!(join_deadline(1_010, 1_000), 1_010);
    }
}
