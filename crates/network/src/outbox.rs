//! The events the loop has for the node but could not hand over yet.
//!
//! The event loop never waits for the node (the node waits for the loop to
//! answer its commands, so waiting back would be a cycle). Inbound requests
//! that do not fit in the event channel are answered "busy" by the loop;
//! the reports kept here are the ones that must not be lost:
//!
//! - Connections are level, not edges: per peer the outbox keeps only the
//!   last state not yet told. Connected-then-Disconnected of a peer the node
//!   never heard of is told as nothing; a state the node already has is not
//!   told again. Their number is bounded by the connections that exist plus
//!   the peers the node still believes connected.
//! - Identify and mDNS reports keep the newest per peer, at most
//!   [`MAX_PENDING_REPORTS`] of them; past that new ones are dropped (they
//!   repeat).
//!
//! Reports go out before new inbound requests: a request is passed on only
//! when the outbox is empty.

use std::collections::{HashSet, VecDeque};

use polykey_keys::NodeId;
use tokio::sync::mpsc;

use crate::actor::Event;
use crate::limits::MAX_PENDING_REPORTS;

/// The reports waiting for room in the event channel.
pub(crate) struct Outbox {
    tx: mpsc::Sender<Event>,
    waiting: VecDeque<Event>,
    /// Peers the node was last told are connected.
    told_connected: HashSet<NodeId>,
    /// The node dropped its receiver: nothing more is kept.
    closed: bool,
}

/// What happened to an inbound request handed to [`Outbox::offer`].
pub(crate) enum Offer {
    /// In the channel.
    Passed,
    /// No room (or reports wait first): the loop answers it itself.
    Full(Event),
    /// Nobody listens any more (the request is dropped, which tells the
    /// peer).
    Closed,
}

fn peer_of(event: &Event) -> Option<NodeId> {
    match event {
        Event::Connected { peer }
        | Event::Disconnected { peer }
        | Event::Identified { peer, .. }
        | Event::PeerDiscovered { peer, .. } => Some(*peer),
        Event::InboundRequest { .. } => None,
    }
}

fn is_connection(event: &Event) -> bool {
    matches!(event, Event::Connected { .. } | Event::Disconnected { .. })
}

impl Outbox {
    pub(crate) fn new(tx: mpsc::Sender<Event>) -> Self {
        Self {
            tx,
            waiting: VecDeque::new(),
            told_connected: HashSet::new(),
            closed: false,
        }
    }

    /// Whether reports wait.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How many reports wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// A sender to wait for room with (see [`Outbox::send_reserved`]).
    pub(crate) fn sender(&self) -> mpsc::Sender<Event> {
        self.tx.clone()
    }

    /// Queue a report (anything but an inbound request) and hand over what
    /// fits.
    pub(crate) fn report(&mut self, event: Event) {
        if self.closed {
            return;
        }
        let Some(peer) = peer_of(&event) else {
            return;
        };
        if is_connection(&event) {
            self.waiting
                .retain(|e| !(is_connection(e) && peer_of(e) == Some(peer)));
            let connected = matches!(event, Event::Connected { .. });
            if connected != self.told_connected.contains(&peer) {
                self.waiting.push_back(event);
            }
        } else {
            let same_kind = |e: &Event| {
                std::mem::discriminant(e) == std::mem::discriminant(&event)
                    && peer_of(e) == Some(peer)
            };
            if let Some(slot) = self.waiting.iter_mut().find(|e| same_kind(e)) {
                *slot = event;
            } else if self.reports() < MAX_PENDING_REPORTS {
                self.waiting.push_back(event);
            }
        }
        self.flush();
    }

    fn reports(&self) -> usize {
        self.waiting.iter().filter(|e| !is_connection(e)).count()
    }

    fn told(&mut self, event: &Event) {
        match event {
            Event::Connected { peer } => {
                self.told_connected.insert(*peer);
            }
            Event::Disconnected { peer } => {
                self.told_connected.remove(peer);
            }
            _ => {}
        }
    }

    /// Hand over waiting reports while the channel has room.
    pub(crate) fn flush(&mut self) {
        while let Some(event) = self.waiting.pop_front() {
            self.told(&event);
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.untold(&event);
                    self.waiting.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.close();
                    return;
                }
            }
        }
    }

    fn untold(&mut self, event: &Event) {
        match event {
            Event::Connected { peer } => {
                self.told_connected.remove(peer);
            }
            Event::Disconnected { peer } => {
                self.told_connected.insert(*peer);
            }
            _ => {}
        }
    }

    /// Hand over the first waiting report through room already reserved,
    /// then whatever else fits.
    pub(crate) fn send_reserved(&mut self, permit: mpsc::OwnedPermit<Event>) {
        if let Some(event) = self.waiting.pop_front() {
            self.told(&event);
            permit.send(event);
        }
        self.flush();
    }

    /// The node is gone: keep nothing.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.waiting.clear();
        self.told_connected.clear();
    }

    /// Pass an inbound request on if there is room and no report waits.
    pub(crate) fn offer(&mut self, event: Event) -> Offer {
        if self.closed {
            return Offer::Closed;
        }
        self.flush();
        if !self.waiting.is_empty() {
            return Offer::Full(event);
        }
        match self.tx.try_send(event) {
            Ok(()) => Offer::Passed,
            Err(mpsc::error::TrySendError::Full(event)) => Offer::Full(event),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.close();
                Offer::Closed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polykey_keys::RootKeypair;

    fn node(seed: u8) -> NodeId {
        RootKeypair::from_seed(&[seed; 32]).node_id()
    }

    fn drain(rx: &mut mpsc::Receiver<Event>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            out.push(match event {
                Event::Connected { peer } => format!("+{}", &peer.to_string()[..4]),
                Event::Disconnected { peer } => format!("-{}", &peer.to_string()[..4]),
                Event::Identified { .. } => "identified".into(),
                Event::PeerDiscovered { .. } => "discovered".into(),
                Event::InboundRequest { .. } => "request".into(),
            });
        }
        out
    }

    #[test]
    fn connections_are_told_as_their_last_state_and_never_block() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(tx);
        let (a, b) = (node(1), node(2));
        outbox.report(Event::Connected { peer: a });
        // The channel is full: these wait, and coalesce.
        for _ in 0..1000 {
            outbox.report(Event::Connected { peer: b });
            outbox.report(Event::Disconnected { peer: a });
            outbox.report(Event::Connected { peer: a });
        }
        outbox.report(Event::Disconnected { peer: b });
        // a: told connected, is connected: nothing waits. b: never told,
        // gone again: nothing waits.
        assert_eq!(outbox.len(), 0);
        outbox.report(Event::Disconnected { peer: a });
        assert_eq!(outbox.len(), 1);
        let a4 = &a.to_string()[..4];
        assert_eq!(drain(&mut rx), vec![format!("+{a4}")]);
        outbox.flush();
        assert_eq!(drain(&mut rx), vec![format!("-{a4}")]);
    }

    #[test]
    fn reports_wait_in_bounded_numbers_and_requests_yield_to_them() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(tx);
        for seed in 0..=255u8 {
            for round in 0..4u8 {
                let address = format!("/ip4/10.0.0.{round}/tcp/1").parse().unwrap();
                outbox.report(Event::PeerDiscovered {
                    peer: node(seed),
                    address,
                });
                outbox.report(Event::Identified {
                    peer: node(seed),
                    addresses: Vec::new(),
                });
            }
        }
        assert!(outbox.len() <= MAX_PENDING_REPORTS, "{}", outbox.len());
        assert_eq!(drain(&mut rx).len(), 1);
        outbox.flush();
        assert!(!outbox.is_empty());
        drop(rx);
        outbox.flush();
        assert!(outbox.is_empty(), "nobody listens: nothing is kept");
    }
}
