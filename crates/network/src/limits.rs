//! How much any peer can make this node do or keep: connections, the
//! inbound request rate, what discovery may queue, and the relay's circuit
//! budget. The defaults are the fields of [`crate::Config`]; the rest are
//! fixed here, next to the token bucket that enforces the rates.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::protocol::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// Established connections in all, by default. Each costs a few hundred KiB
/// at most (yamux windows, noise buffers); 256 keeps a flood of keys well
/// under 100 MiB while leaving room for every device of a gestalt, the
/// seeds, and strangers trying to pair.
pub const MAX_CONNECTIONS: u32 = 256;
/// Connections strangers (neither a device nor a seed) may hold out of
/// `max_connections`: the rest is room for a newcomer, made by closing a
/// random stranger's connection whenever a new one arrives past this (see
/// the event loop), so strangers filling the limit keep no one out.
pub fn max_strangers(max_connections: u32) -> usize {
    let max = max_connections as usize;
    max - (max / 8).max(1).min(max)
}
/// Established connections to one peer, by default: one per transport
/// (TCP, QUIC, a relayed one) and one spare while a hole punch upgrades a
/// relayed connection.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Incoming connections still in their handshake, by default. A handshake
/// takes milliseconds; 32 at once is a flood, not a crowd.
pub const MAX_PENDING_INCOMING: u32 = 32;
/// Outgoing dials under way, by default (redialling every device and the
/// seeds at once fits).
pub const MAX_PENDING_OUTGOING: u32 = 32;

/// Inbound requests one peer may send in a burst. A sync asks for one page
/// at a time and a pairing is four steps, so an honest device never comes
/// near; 64 lets a device that reconnects catch up without waiting.
pub const REQUEST_BURST: u32 = 64;
/// Inbound requests per second one peer earns back after a burst.
pub const REQUEST_REFILL_PER_SEC: u32 = 32;
/// Inbound requests a trusted peer (a device of the gestalt, see
/// [`crate::Client::trust`]) may send in a burst. A pull is four or five
/// requests (chains, vaults, deletions, fetch pages) and a device editing
/// in a loop pulls a dozen times a second; this only stops a runaway.
pub const TRUSTED_REQUEST_BURST: u32 = 512;
/// Inbound requests per second a trusted peer earns back.
pub const TRUSTED_REQUEST_REFILL_PER_SEC: u32 = 256;
/// Inbound requests all the devices of one other person (see
/// [`crate::Client::trust_people`]) may send together in a burst: four
/// devices' worth, so their resyncs of many shared vaults at once fit,
/// whatever number of devices they claim. They earn back
/// [`TRUSTED_REQUEST_REFILL_PER_SEC`] together, as one device would (a
/// device editing in a loop pulls a few dozen requests a second).
pub const PERSON_REQUEST_BURST: u32 = 4 * TRUSTED_REQUEST_BURST;
/// Peers whose request budget is remembered. A bucket is forgotten once it
/// is full again (it would say nothing new), so only peers that asked in the
/// last two seconds are kept; this bounds them even under churn.
pub const MAX_RATED_PEERS: usize = 4 * MAX_CONNECTIONS as usize;

/// Inbound requests waiting for the node to take them. The event loop never
/// waits for the node: a request that finds this many already waiting is
/// answered "busy" at once.
pub const EVENT_QUEUE: usize = 256;
/// What the loop answers a request it will not pass on (over the rate, or
/// the node is behind).
pub const BUSY: &str = "busy; try again";

/// mDNS discoveries taken from one mDNS answer (a local peer may announce
/// many ids and addresses in one packet).
pub const MAX_DISCOVERED_PER_EVENT: usize = 16;
/// mDNS discoveries passed on per minute, after a burst of the same size.
pub const MAX_DISCOVERED_PER_MINUTE: u32 = 64;
/// Discoveries and identify reports waiting for the node while it is busy;
/// past this, new ones are dropped (both repeat: mDNS every few minutes,
/// identify on every connection).
pub const MAX_PENDING_REPORTS: usize = 512;
/// Listen addresses taken from one identify report.
pub const MAX_IDENTIFY_ADDRESSES: usize = 16;

/// Bytes the requests being read on one connection hold from that
/// connection's own allowance: a dozen requests of an honest device (a few
/// KiB each) at once, or one of 40 KiB (read in blocks, then joined). A
/// stream holds nothing until its first 256 bytes come, and then about
/// three times what it sent at most, so strangers holding all of theirs
/// (28 MiB over 224 connections) must have sent a third of that.
pub const REQUEST_READING_OWN: usize = 128 * 1024;
/// Bytes past its own allowance the requests being read on one connection
/// may hold: one request of the largest size, read in blocks and then
/// joined (twice its size for a moment), and no more.
pub const REQUEST_READING_PER_CONNECTION: usize = 2 * MAX_REQUEST_BYTES as usize + 64 * 1024;
/// Bytes past their own allowances the requests being read on all
/// connections may hold together. A request that finds none left is dropped
/// (its sender sees the stream reset and asks again later); a stranger's
/// streams that never finish fill this at most, never a device's own
/// allowance, so a device's usual requests are still read.
pub const REQUEST_READING_SHARED: usize = 64 * 1024 * 1024;

/// Outgoing requests waiting for an answer.
pub const MAX_PENDING_REQUESTS: usize = 1024;
/// Outgoing requests waiting for an answer from one peer; one more is
/// refused at once. A peer that takes requests and never answers (a
/// stolen device told of every commit) so holds up at most this many until
/// they time out, never all of [`MAX_PENDING_REQUESTS`]: the node goes on
/// asking everyone else. A pull asks one page at a time, so an honest
/// peer never comes near.
pub const MAX_PENDING_REQUESTS_PER_PEER: usize = 64;
/// Peers being dialled on a client's behalf.
pub const MAX_PENDING_DIALS: usize = 256;
/// Callers waiting on the same dial.
pub const MAX_WAITERS_PER_DIAL: usize = 16;
/// DHT lookups under way.
pub const MAX_PENDING_FINDS: usize = 32;
/// How often seeds that are not connected are dialled again (the node
/// listens through the seeds that relay, which needs a connection).
pub const SEED_REDIAL_EVERY: Duration = Duration::from_secs(30);
/// Established connections to one peer exempt from the limits (a device
/// of the gestalt, a seed): twice the usual per-peer limit, since two
/// devices dialling each other at once on every transport open up to six.
/// A stolen device opening more (each with its streams and buffers) has
/// its oldest closed for each new one.
pub const MAX_CONNECTIONS_PER_TRUSTED_PEER: u32 = 8;
/// Peers exempt from the connection limits (the devices of the gestalt,
/// and those of people sharing vaults with it).
pub const MAX_TRUSTED: usize = 1024;
/// Established connections all the devices of one other person (someone
/// sharing vaults with this gestalt, see [`crate::Client::trust_people`])
/// may hold together: two of their devices dialling this one at once on
/// every transport, twice over. Past it, the person's oldest connection is
/// closed for each new one. One person claiming 64 devices would otherwise
/// hold eight connections with each, every one with its own streams and
/// buffers.
pub const MAX_CONNECTIONS_PER_PERSON: usize = 16;
/// Devices of one other person trusted at most; the rest are strangers.
/// A person's signed list of nodes holds at most
/// [`crate::protocol::MAX_SHARE_NODES`], but each vault they share brings
/// its own list.
pub const MAX_DEVICES_PER_PERSON: usize = crate::protocol::MAX_SHARE_NODES;

/// Bytes one relayed connection may carry (both ways): a whole response of
/// [`MAX_RESPONSE_BYTES`] twice over plus framing, so a sync page always
/// fits and a second page usually does. A longer sync opens a new circuit.
pub const RELAY_CIRCUIT_BYTES: u64 = 2 * MAX_RESPONSE_BYTES + 16 * 1024 * 1024;
/// How long one relayed connection may last: a page of 40 MiB at a slow
/// 1 Mbit/s takes about 5.5 minutes.
pub const RELAY_CIRCUIT_DURATION: Duration = Duration::from_secs(10 * 60);
/// Relayed connections a relay carries at once, in all and per peer.
pub const RELAY_MAX_CIRCUITS: usize = 64;
/// Relayed connections per peer.
pub const RELAY_MAX_CIRCUITS_PER_PEER: usize = 8;
/// Nodes that may listen through a relay at once, in all and per peer.
pub const RELAY_MAX_RESERVATIONS: usize = 256;
/// Reservations per peer.
pub const RELAY_MAX_RESERVATIONS_PER_PEER: usize = 4;

/// A token bucket: `burst` tokens, refilled at `per_sec`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The rate of something per key (a peer), with a bounded memory.
#[derive(Debug)]
pub(crate) struct Rate<K> {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<K, Bucket>,
    most: usize,
}

impl<K: Eq + Hash + Copy> Rate<K> {
    /// `burst` at once, `per_sec` after that, for at most `most` keys.
    pub(crate) fn new(burst: u32, per_sec: f64, most: usize) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: per_sec.max(0.0),
            buckets: HashMap::new(),
            most,
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }

    /// Take a token for `key` if it has one.
    pub(crate) fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= self.most && !self.buckets.contains_key(&key) {
            // Forget every bucket that is full again: it holds nothing.
            let burst = self.burst;
            let buckets = std::mem::take(&mut self.buckets);
            self.buckets = buckets
                .into_iter()
                .filter(|(_, b)| self.refilled(*b, now) < burst)
                .collect();
            if self.buckets.len() >= self.most {
                // Every remembered key is spending right now: a new key
                // gets no burst until some of them calm down.
                return false;
            }
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let bucket = self.buckets.get(&key).copied().unwrap_or(fresh);
        let tokens = self.refilled(bucket, now);
        let allowed = tokens >= 1.0;
        let tokens = if allowed { tokens - 1.0 } else { tokens };
        self.buckets.insert(key, Bucket { tokens, at: now });
        allowed
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut rate = Rate::new(REQUEST_BURST, f64::from(REQUEST_REFILL_PER_SEC), 8);
        let start = Instant::now();
        let allowed = (0..300).filter(|_| rate.allow(1u8, start)).count();
        assert_eq!(allowed, REQUEST_BURST as usize);
        // Another key has its own budget.
        assert!(rate.allow(2u8, start));
        // Half a second later, half the refill rate's worth again.
        let later = start + Duration::from_millis(500);
        let allowed = (0..300).filter(|_| rate.allow(1u8, later)).count();
        assert_eq!(allowed, REQUEST_REFILL_PER_SEC as usize / 2);
    }

    #[test]
    fn a_rate_remembers_a_bounded_number_of_keys() {
        let mut rate = Rate::new(4, 2.0, 16);
        let start = Instant::now();
        for key in 0..1000u32 {
            rate.allow(key, start);
        }
        assert!(rate.remembered() <= 16, "{}", rate.remembered());
        // Once their buckets are full again they are forgotten, and new
        // keys are welcome.
        let later = start + Duration::from_secs(3);
        assert!(rate.allow(5000, later));
        assert!(rate.remembered() <= 2, "{}", rate.remembered());
    }
}
