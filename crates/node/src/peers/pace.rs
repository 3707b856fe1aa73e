//! How large a page a fetch asks each device for: what its link carries
//! well within the request timeout. A page that took a quarter of the
//! timeout halves the next; a page that never came (its request failed
//! after that long) drops it to the least; a full page that came within a
//! sixteenth doubles it again, up to [`PAGE_BYTES`]. So a slow link (a
//! relay, a poor uplink) is asked for pages it carries in time instead of
//! 8 MiB pages that never arrive, and a fast one keeps the largest.

use std::collections::HashMap;
use std::time::Duration;

use polykey_keys::NodeId;
use polykey_network::protocol::{MIN_PAGE_BYTES, PAGE_BYTES};

/// Devices whose pages are remembered as smaller than [`PAGE_BYTES`]; past
/// it a newly slow one is asked for whole pages (a fetch is only ever of a
/// device of the gestalt or a node sharing a vault).
const MAX_PACED: usize = 1024;

/// The page size each device's link carries.
pub(crate) struct Pace {
    timeout: Duration,
    pages: HashMap<NodeId, usize>,
}

impl Default for Pace {
    fn default() -> Self {
        Self::new(polykey_network::Config::default().request_timeout)
    }
}

impl Pace {
    /// With requests that fail after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            pages: HashMap::new(),
        }
    }

    /// The page to ask `peer` for.
    pub(super) fn page(&self, peer: &NodeId) -> usize {
        self.pages.get(peer).copied().unwrap_or(PAGE_BYTES)
    }

    /// A page of `bytes`, asked for as `page` bytes, came from `peer`
    /// after `took`.
    pub(super) fn took(&mut self, peer: NodeId, page: usize, bytes: usize, took: Duration) {
        if took >= self.timeout / 4 {
            self.set(peer, page / 2);
        } else if took < self.timeout / 16 && bytes >= page / 2 {
            self.set(peer, page.saturating_mul(2));
        }
    }

    /// A page asked of `peer` never came: its request failed after `took`
    /// (sooner, the connection failed, not the link's pace).
    pub(super) fn failed(&mut self, peer: NodeId, took: Duration) {
        if took >= self.timeout / 4 {
            self.set(peer, MIN_PAGE_BYTES);
        }
    }

    fn set(&mut self, peer: NodeId, page: usize) {
        let page = page.clamp(MIN_PAGE_BYTES, PAGE_BYTES);
        if page == PAGE_BYTES {
            self.pages.remove(&peer);
        } else if self.pages.len() < MAX_PACED || self.pages.contains_key(&peer) {
            self.pages.insert(peer, page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> NodeId {
        polykey_keys::RootKeypair::from_seed(&[7; 32]).node_id()
    }

    #[test]
    fn a_slow_link_gets_smaller_pages_and_a_fast_one_the_largest_again() {
        let mut pace = Pace::new(Duration::from_secs(32));
        let p = peer();
        assert_eq!(pace.page(&p), PAGE_BYTES);
        // Full pages in 9 s: halved each time, never below the least.
        for expected in [4, 2, 1] {
            pace.took(p, pace.page(&p), pace.page(&p), Duration::from_secs(9));
            assert_eq!(pace.page(&p), expected * 1024 * 1024);
        }
        pace.took(p, pace.page(&p), 0, Duration::from_secs(20));
        pace.took(p, pace.page(&p), 0, Duration::from_secs(20));
        assert_eq!(pace.page(&p), MIN_PAGE_BYTES);
        // A page taking between a sixteenth and a quarter keeps the size;
        // a quick one that was nearly empty says nothing of the link.
        pace.took(p, MIN_PAGE_BYTES, MIN_PAGE_BYTES, Duration::from_secs(4));
        pace.took(p, MIN_PAGE_BYTES, 10, Duration::from_millis(5));
        assert_eq!(pace.page(&p), MIN_PAGE_BYTES);
        // Full pages in a blink: doubled back to the largest.
        for _ in 0..10 {
            pace.took(p, pace.page(&p), pace.page(&p), Duration::from_millis(5));
        }
        assert_eq!(pace.page(&p), PAGE_BYTES);
        assert!(pace.pages.is_empty(), "the largest is not remembered");
        // A page that never came, after a while: the least at once; a
        // connection that failed at once says nothing of the pace.
        pace.failed(p, Duration::from_millis(10));
        assert_eq!(pace.page(&p), PAGE_BYTES);
        pace.failed(p, Duration::from_secs(32));
        assert_eq!(pace.page(&p), MIN_PAGE_BYTES);
    }
}
