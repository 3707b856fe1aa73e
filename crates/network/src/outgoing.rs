//! This node's own requests, each waiting for its answer: at most
//! [`MAX_REQUESTS_IN_FLIGHT`](crate::limits::MAX_REQUESTS_IN_FLIGHT) on the
//! wire to one peer at once, the rest waiting here in the order they were
//! asked. Every request is a stream of its own, and a peer closes a
//! connection that opens more streams at once than it allows
//! ([`MAX_STREAMS_PER_CONNECTION`](crate::limits::MAX_STREAMS_PER_CONNECTION)),
//! so a burst of requests (a device pulling many vaults, a test flooding)
//! must queue rather than cost the connection.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Requests to peers `P`, known on the wire by ids `I`, each with what
/// waits for its answer `R`, carrying requests `Q`.
pub(crate) struct Outgoing<P, I, Q, R> {
    per_peer: usize,
    most: usize,
    on_wire: HashMap<I, (P, R)>,
    in_flight: HashMap<P, usize>,
    waiting: HashMap<P, VecDeque<(Q, R)>>,
    waiting_count: usize,
}

impl<P: Copy + Eq + Hash, I: Eq + Hash, Q, R> Outgoing<P, I, Q, R> {
    /// At most `per_peer` on the wire to one peer, and `most` in all
    /// (on the wire and waiting).
    pub(crate) fn new(per_peer: usize, most: usize) -> Self {
        Self {
            per_peer: per_peer.max(1),
            most,
            on_wire: HashMap::new(),
            in_flight: HashMap::new(),
            waiting: HashMap::new(),
            waiting_count: 0,
        }
    }

    /// Whether no more requests may be taken.
    pub(crate) fn is_full(&self) -> bool {
        self.on_wire.len() + self.waiting_count >= self.most
    }

    /// Send `request` to `peer` now through `send` if the peer has room on
    /// the wire, else keep it until an earlier one is answered. The caller
    /// checks [`Outgoing::is_full`] first.
    pub(crate) fn ask(&mut self, peer: P, request: Q, reply: R, send: impl FnOnce(&P, Q) -> I) {
        let in_flight = self.in_flight.entry(peer).or_default();
        if *in_flight < self.per_peer {
            *in_flight += 1;
            let id = send(&peer, request);
            self.on_wire.insert(id, (peer, reply));
        } else {
            self.waiting
                .entry(peer)
                .or_default()
                .push_back((request, reply));
            self.waiting_count += 1;
        }
    }

    /// The request `id` was answered or failed: what waits for its answer,
    /// after the next request waiting for the same peer (whose asker still
    /// waits, as `open` says) was sent through `send`.
    pub(crate) fn answered(
        &mut self,
        id: &I,
        open: impl Fn(&R) -> bool,
        send: impl FnMut(&P, Q) -> I,
    ) -> Option<R> {
        let (peer, reply) = self.on_wire.remove(id)?;
        if let Some(in_flight) = self.in_flight.get_mut(&peer) {
            *in_flight = in_flight.saturating_sub(1);
        }
        self.next(peer, open, send);
        Some(reply)
    }

    /// Send what waits for `peer` while it has room on the wire, dropping
    /// requests nobody waits for any more.
    fn next(&mut self, peer: P, open: impl Fn(&R) -> bool, mut send: impl FnMut(&P, Q) -> I) {
        let in_flight = self.in_flight.get(&peer).copied().unwrap_or(0);
        let mut room = self.per_peer.saturating_sub(in_flight);
        if let Some(queue) = self.waiting.get_mut(&peer) {
            while room > 0 {
                let Some((request, reply)) = queue.pop_front() else {
                    break;
                };
                self.waiting_count -= 1;
                if !open(&reply) {
                    continue;
                }
                room -= 1;
                *self.in_flight.entry(peer).or_default() += 1;
                let id = send(&peer, request);
                self.on_wire.insert(id, (peer, reply));
            }
            if queue.is_empty() {
                self.waiting.remove(&peer);
            }
        }
        if self.in_flight.get(&peer) == Some(&0) {
            self.in_flight.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests are numbered by the order they go on the wire.
    fn sender<'a>(
        sent: &'a mut Vec<(u8, &'static str)>,
    ) -> impl FnMut(&u8, &'static str) -> usize + 'a {
        move |peer, request| {
            sent.push((*peer, request));
            sent.len() - 1
        }
    }

    #[test]
    fn past_its_room_on_the_wire_a_peers_requests_wait_their_turn_in_order() {
        let mut out: Outgoing<u8, usize, &str, u32> = Outgoing::new(2, 10);
        let mut sent = Vec::new();
        for (i, request) in ["a", "b", "c", "d"].into_iter().enumerate() {
            out.ask(1, request, i as u32, sender(&mut sent));
        }
        out.ask(2, "x", 9, sender(&mut sent));
        // Two on the wire to peer 1, and peer 2's own room untouched.
        assert_eq!(sent, [(1, "a"), (1, "b"), (2, "x")]);
        assert_eq!(out.answered(&1, |_| true, sender(&mut sent)), Some(1));
        assert_eq!(sent.last(), Some(&(1, "c")));
        assert_eq!(out.answered(&0, |_| true, sender(&mut sent)), Some(0));
        assert_eq!(sent.last(), Some(&(1, "d")));
        assert_eq!(sent.len(), 5);
        // Answered twice, or never asked: nothing.
        assert_eq!(out.answered(&0, |_| true, sender(&mut sent)), None);
        assert_eq!(out.answered(&99, |_| true, sender(&mut sent)), None);
    }

    #[test]
    fn a_request_nobody_waits_for_is_not_sent_and_all_are_counted_against_the_bound() {
        let mut out: Outgoing<u8, usize, &str, u32> = Outgoing::new(1, 3);
        let mut sent = Vec::new();
        out.ask(1, "a", 0, sender(&mut sent));
        out.ask(1, "gone", 1, sender(&mut sent));
        out.ask(1, "c", 2, sender(&mut sent));
        assert!(out.is_full());
        // The asker of "gone" stopped waiting: "c" goes next.
        assert_eq!(out.answered(&0, |r| *r != 1, sender(&mut sent)), Some(0));
        assert_eq!(sent, [(1, "a"), (1, "c")]);
        assert!(!out.is_full());
        assert_eq!(out.answered(&1, |_| true, sender(&mut sent)), Some(2));
        assert!(out.in_flight.is_empty() && out.waiting.is_empty() && out.on_wire.is_empty());
    }
}
