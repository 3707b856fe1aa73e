//! Streams a stranger opens on one connection and never has taken: below
//! the transport, played by a bare libp2p connection (TCP, Noise, yamux)
//! that opens streams and writes into them without ever naming a protocol.
//! Each such stream holds what it sent, up to yamux's first window of
//! 256 KiB, until the node takes it, so how many one connection may have
//! open is what bounds the memory a stranger can pin through it.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::future::poll_fn;
use futures::AsyncWrite;
use libp2p::core::muxing::{StreamMuxerBox, StreamMuxerExt, SubstreamBox};
use libp2p::core::transport::{DialOpts, PortUse};
use libp2p::core::upgrade::Version;
use libp2p::core::{Endpoint, Transport};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use polykey_network::limits::MAX_STREAMS_PER_CONNECTION;
use polykey_network::Request;

use crate::rogue::{dial, rogue};
use crate::{device, Device};

/// A bare connection to `target`: TCP, Noise and yamux, as a node's own,
/// and nothing above them.
async fn bare_connection(target: &Device) -> StreamMuxerBox {
    let mut address: Multiaddr = target.node.addresses().await.unwrap()[0].parse().unwrap();
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    let key = libp2p::identity::Keypair::generate_ed25519();
    let mut transport = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default())
        .upgrade(Version::V1)
        .authenticate(libp2p::noise::Config::new(&key).unwrap())
        .multiplex(libp2p::yamux::Config::default())
        .map(|(_, muxer), _| StreamMuxerBox::new(muxer))
        .boxed();
    let opts = DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::New,
    };
    tokio::time::timeout(crate::PATIENCE, transport.dial(address, opts).unwrap())
        .await
        .expect("the connection took too long")
        .unwrap()
}

/// The first byte of a length that never ends: the node's negotiation of
/// a stream that sends only this waits for the rest until it times out
/// (10 s), and the stream stays open all that while.
const STALL: &[u8] = &[0x80];

/// Open `count` streams on `connection`, each sending only [`STALL`], then
/// keep the connection going for `linger`. Returns how many streams it had
/// opened when it found the connection closed, or `None` if it was still
/// open at the end.
async fn open_stalled_streams(
    connection: &mut StreamMuxerBox,
    count: usize,
    linger: Duration,
) -> Option<usize> {
    let mut streams: Vec<(SubstreamBox, bool)> = Vec::new();
    let until = tokio::time::Instant::now() + linger;
    let mut deadline = Box::pin(tokio::time::sleep(crate::PATIENCE));
    let mut woken = false;
    poll_fn(|cx| {
        let closed = |streams: &Vec<_>| Poll::Ready(Some(streams.len()));
        // Whatever the node opens (identify) is dropped unread.
        loop {
            match connection.poll_inbound_unpin(cx) {
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(_)) => return closed(&streams),
                Poll::Pending => break,
            }
        }
        loop {
            match connection.poll_unpin(cx) {
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(_)) => return closed(&streams),
                Poll::Pending => break,
            }
        }
        while streams.len() < count {
            match connection.poll_outbound_unpin(cx) {
                Poll::Ready(Ok(stream)) => streams.push((stream, false)),
                Poll::Ready(Err(_)) => return closed(&streams),
                Poll::Pending => break,
            }
        }
        for (stream, sent) in streams.iter_mut().filter(|(_, sent)| !*sent) {
            match Pin::new(&mut *stream).poll_write(cx, STALL) {
                Poll::Ready(Ok(n)) if n > 0 => *sent = true,
                // Refused alone (the connection's end shows above).
                Poll::Ready(_) => *sent = true,
                Poll::Pending => {}
            }
        }
        let all_sent = streams.len() == count && streams.iter().all(|(_, sent)| *sent);
        if all_sent && tokio::time::Instant::now() >= until {
            return Poll::Ready(None);
        }
        if deadline.as_mut().poll(cx).is_ready() {
            panic!(
                "{} of {count} streams opened in {:?}",
                streams.len(),
                crate::PATIENCE
            );
        }
        if all_sent && !woken {
            // Look again once the linger is over.
            woken = true;
            let waker = cx.waker().clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(until).await;
                waker.wake();
            });
        }
        Poll::Pending
    })
    .await
}

/// Defeated: a stranger could open 512 streams on one connection (yamux's
/// default) and keep them waiting, each holding what yamux lets it send
/// unasked (256 KiB), 128 MiB a connection. The node now closes a
/// connection past [`MAX_STREAMS_PER_CONNECTION`] streams at once; one
/// within them (as every node's own requests keep) stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_opening_more_streams_than_any_peer_needs_is_cut_off() {
    let a = device().await;
    let mut within = bare_connection(&a).await;
    let streams = MAX_STREAMS_PER_CONNECTION - 8;
    let closed = open_stalled_streams(&mut within, streams, Duration::from_millis(500)).await;
    assert_eq!(
        closed, None,
        "a connection with {streams} streams was closed"
    );

    let mut flood = bare_connection(&a).await;
    let closed = open_stalled_streams(&mut flood, 200, Duration::from_secs(2)).await;
    assert!(
        closed.is_some(),
        "200 streams waiting at once were all kept open"
    );
    drop((within, flood));
}

/// A node asking one peer many things at once (here 100 pings) keeps to
/// the streams the peer allows: the requests past
/// `MAX_REQUESTS_IN_FLIGHT` wait their turn, every one is answered (a
/// stranger past its budget hears "busy"), and none costs the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_requests_to_one_peer_is_answered_whole() {
    let a = device().await;
    let asker = rogue(71).await;
    dial(&asker, &a).await;
    let asks = (0..100).map(|_| asker.client.request(a.id(), Request::Ping));
    let failed: Vec<String> = futures::future::join_all(asks)
        .await
        .into_iter()
        .filter_map(|answer| answer.err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 100 failed: {:?}",
        failed.len(),
        failed.first()
    );
}
