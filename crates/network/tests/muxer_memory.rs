//! What a peer's yamux frames make the node hold, measured by the
//! process's resident memory: the muxer of one connection is fed frames a
//! hostile peer writes (no swarm, no network: the bytes as they would come
//! off the wire) and polled until it has read them all.
#![allow(clippy::unwrap_used)]

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::StreamMuxerExt;
use libp2p::core::upgrade::InboundConnectionUpgrade;
use polykey_network::muxer;

/// A connection's bytes from the peer, given a block at a time; what the
/// node writes is taken, or never (a peer that stopped reading).
struct Wire {
    input: Vec<u8>,
    read: Arc<AtomicUsize>,
    writes_block: bool,
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = this.read.load(Ordering::Relaxed);
        let n = buf.len().min(this.input.len() - at).min(64 * 1024);
        if n == 0 {
            return Poll::Pending;
        }
        buf[..n].copy_from_slice(&this.input[at..at + n]);
        this.read.store(at + n, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.writes_block {
            Poll::Pending
        } else {
            Poll::Ready(Ok(buf.len()))
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writes_block {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A yamux data frame: version 0, type 0, `flags`, the stream, the body.
fn data_frame(out: &mut Vec<u8>, stream: u32, flags: u16, body: &[u8]) {
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
}
const SYN: u16 = 1;
/// What yamux lets a peer send a stream before it is read.
const WINDOW: usize = 256 * 1024;

/// The process's resident bytes.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Feed `input` to a stranger's connection and poll it until every byte is
/// read; the streams it gives are kept unread, but for those `drop_after`
/// and on (dropped as the swarm drops a stream it resets). Before the
/// first is read, the node starts writing on it (and a peer that stopped
/// reading leaves that write waiting). Returns the resident bytes the
/// connection added.
fn held_by(input: Vec<u8>, writes_block: bool, keep: usize) -> usize {
    let read = Arc::new(AtomicUsize::new(0));
    let len = input.len();
    let wire = Wire {
        input,
        read: Arc::clone(&read),
        writes_block,
    };
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let config = muxer::Config::for_peer(&peer, &muxer::Trusted::new(false));
    let mut connection =
        futures::executor::block_on(config.upgrade_inbound(wire, "/yamux/1.0.0")).unwrap();
    let before = resident();
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut kept = Vec::new();
    let mut idle = 0;
    while idle < 100 {
        let at = read.load(Ordering::Relaxed);
        let _ = connection.poll_unpin(&mut cx);
        while let Poll::Ready(Ok(mut stream)) = connection.poll_inbound_unpin(&mut cx) {
            if kept.is_empty() {
                let _ = Pin::new(&mut stream).poll_write(&mut cx, &[0u8; 1024]);
            }
            if kept.len() < keep {
                kept.push(stream);
            }
        }
        if read.load(Ordering::Relaxed) == at && at == len {
            idle += 1;
        }
    }
    let held = resident().saturating_sub(before);
    drop(kept);
    drop(connection);
    held
}

/// One test, so that nothing else runs in the process while it measures.
#[test]
fn a_peer_holds_no_more_than_its_windows_in_small_frames_or_on_dropped_streams() {
    // A window sent in frames of one byte each (13 bytes on the wire a
    // byte): kept a frame each, it held 16 MiB (a chunk's slot and its
    // allocation for every byte; 272 KiB now).
    let mut input = Vec::new();
    data_frame(&mut input, 1, SYN, b"x");
    for _ in 1..WINDOW {
        data_frame(&mut input, 1, 0, b"x");
    }
    let held = held_by(input, false, 1);
    assert!(
        held < 4 * 1024 * 1024,
        "a window of 1-byte frames held {} KiB",
        held / 1024
    );

    // The node writing to a peer that reads nothing: the connection learns
    // that a stream was dropped only once its write goes out, so every
    // stream reset meanwhile (the stranger's past its few) kept the window
    // the peer filled (here 9.5 MiB).
    let mut input = Vec::new();
    let full = vec![b'x'; WINDOW];
    data_frame(&mut input, 1, SYN, b"x");
    for stream in 1..=100u32 {
        data_frame(&mut input, 2 * stream + 1, SYN, &full);
    }
    let held = held_by(input, true, 1);
    assert!(
        held < 4 * 1024 * 1024,
        "100 streams dropped while the node could not write held {} KiB",
        held / 1024
    );
}
