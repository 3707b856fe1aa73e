//! How much a peer can send a connection unread: yamux, driven here with
//! a budget for the windows it grants and fewer of a peer's new streams
//! held while the node is busy, and QUIC's windows.
//!
//! libp2p's yamux keeps up to 256 inbound streams the node has not taken
//! yet (the swarm takes one only while fewer than its limit are
//! negotiating a protocol), and each may carry the 256 KiB yamux lets a
//! peer send before anyone reads: 64 MiB a connection, held by whoever
//! opens streams faster than they are negotiated, stranger or not. Here
//! at most [`MAX_WAITING_INBOUND_STREAMS`] wait; past them a new stream is
//! reset at once (its buffer freed), as libp2p's own yamux does past 256.
//! An honest peer's streams never wait here: the swarm takes each new
//! stream in the same turn it arrives, unless
//! [`MAX_NEGOTIATING_INBOUND_STREAMS`] are still negotiating, and a
//! negotiation ends as soon as the peer's first bytes arrive.
//!
//! yamux also grows a stream's window (doubling it) when the peer used
//! half of it within two round trips, which the peer times (it answers
//! yamux's pings when it likes): through a stream the node keeps reading
//! (a ping echo, a negotiation answering "na"), then stops, a peer could
//! grow windows to a gibibyte a connection, libp2p's default, and fill
//! them. Here windows grow by [`MAX_WINDOW_GROWTH`] in all a connection.
//!
//! Those bounds are a trusted peer's (a device of this gestalt or of a
//! person it shares with, a seed): with the streams the node keeps in use
//! (the DHT's, requests being answered), a connection can keep about 15
//! MiB, and strangers may hold 224 connections. A stranger's
//! connection (whoever the node did not trust when it came, or does not
//! trust now) holds at most [`MAX_STRANGER_STREAMS`] inbound streams at
//! once, whether negotiating, waiting or in use, and its windows never
//! grow: at most 2 MiB unread a connection, 448 MiB for all strangers
//! together. The muxer learns the peer from the handshake
//! ([`Config::for_peer`]) and asks [`Trusted`], which the event loop keeps
//! up to date, at every new stream.
//!
//! yamux itself is a patched copy (`vendor/yamux`): it kept each frame as
//! an allocation of its own (a window of one-byte frames held 16 MiB), and
//! the data of streams dropped while the connection waited to write (a
//! peer that reads nothing); see `vendor/README.md`.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};

use futures::future;
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::PeerId;

/// Inbound streams kept for the swarm while it is not taking them.
pub const MAX_WAITING_INBOUND_STREAMS: usize = 8;
/// Inbound streams of one connection negotiating their protocol at once
/// (libp2p's default is 128). A negotiation holds what the peer sent
/// until it ends or times out (10 s): kept negotiating with proposals it
/// never reads the answers to, a stream holds the 256 KiB it may send
/// unread and a little more.
pub const MAX_NEGOTIATING_INBOUND_STREAMS: usize = 16;
/// Streams a yamux connection may have open, both sides' together (yamux's
/// default; past it the connection is closed). Honest traffic stays near
/// 200: relay circuits, the DHT both ways, requests both ways.
pub const MAX_STREAMS: usize = 512;
/// Inbound streams a stranger's connection holds at once: negotiating,
/// waiting for the node and in use together (a stream is let go of when
/// the node is done with it). An honest stranger needs three or four: its
/// pings, a DHT query or two, identify, a pairing's request. Past it a new
/// stream is reset at once. A node that relays allows each stranger one
/// more a circuit it may relay for it.
pub const MAX_STRANGER_STREAMS: usize = 8;
/// What the windows of a yamux connection's streams may grow by, in all,
/// past the 256 KiB each starts with (libp2p: up to 1 GiB less those).
/// Growth helps a link whose bandwidth-delay product is larger than one
/// window (4 MiB is 80 MB/s at 50 ms); a sync page is 2 MiB.
pub const MAX_WINDOW_GROWTH: usize = 4 * 1024 * 1024;

/// What a peer may send unread on a QUIC connection, on all its streams
/// (libp2p's default: 15 MB): what a stranger's yamux connection can
/// carry ([`MAX_STRANGER_STREAMS`] × 256 KiB), since QUIC's windows are
/// the same for every peer. A sync page (2 MiB) still streams whole:
/// reading it gives the credit back (2 MiB a round trip: 40 MB/s at 50
/// ms).
pub const MAX_QUIC_CONNECTION_DATA: u32 = 2 * 1024 * 1024;
/// What a peer may send unread on one QUIC stream (libp2p's default:
/// 10 MB).
pub const MAX_QUIC_STREAM_DATA: u32 = MAX_QUIC_CONNECTION_DATA;

/// The peers whose connections are held to a trusted peer's bounds, not
/// a stranger's: this node's devices, the devices of people it shares
/// with, and its seeds, as the event loop last said.
#[derive(Debug, Clone)]
pub struct Trusted {
    peers: Arc<RwLock<HashSet<PeerId>>>,
    /// Inbound streams a stranger's connection holds at once.
    stranger_streams: usize,
}

impl Trusted {
    /// No one trusted yet. A relay lets each stranger hold
    /// [`RELAY_MAX_CIRCUITS_PER_PEER`](crate::limits::RELAY_MAX_CIRCUITS_PER_PEER)
    /// more streams, one a circuit it relays for it.
    pub fn new(relay_server: bool) -> Self {
        let circuits = if relay_server {
            crate::limits::RELAY_MAX_CIRCUITS_PER_PEER
        } else {
            0
        };
        Self {
            peers: Arc::default(),
            stranger_streams: MAX_STRANGER_STREAMS + circuits,
        }
    }

    /// Trust these peers (and no others).
    pub(crate) fn set(&self, peers: HashSet<PeerId>) {
        *self.peers.write().unwrap_or_else(PoisonError::into_inner) = peers;
    }

    fn contains(&self, peer: &PeerId) -> bool {
        self.peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(peer)
    }
}

/// The yamux protocol, making [`Muxer`]s with the bounds above.
#[derive(Debug, Clone)]
pub struct Config {
    yamux: yamux::Config,
    /// The peer of the connection, and who is trusted.
    peer: PeerId,
    trusted: Trusted,
}

impl Config {
    /// For a connection to `peer`: a trusted peer's windows grow by
    /// [`MAX_WINDOW_GROWTH`]; a stranger's (not in `trusted` now) never
    /// grow, and it holds no more than [`MAX_STRANGER_STREAMS`] inbound
    /// streams while it is not trusted.
    pub fn for_peer(peer: &PeerId, trusted: &Trusted) -> Self {
        let growth = if trusted.contains(peer) {
            MAX_WINDOW_GROWTH
        } else {
            0
        };
        Self {
            yamux: yamux_config(growth),
            peer: *peer,
            trusted: trusted.clone(),
        }
    }
}

/// yamux's defaults with at most [`MAX_STREAMS`] streams, whose windows
/// grow by `growth` in all past the 256 KiB each starts with.
fn yamux_config(growth: usize) -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(MAX_STREAMS);
    config.set_max_connection_receive_window(Some(
        MAX_STREAMS * yamux::DEFAULT_CREDIT as usize + growth,
    ));
    config
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        future::ready(Ok(Muxer::new(io, self, yamux::Mode::Server)))
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        future::ready(Ok(Muxer::new(io, self, yamux::Mode::Client)))
    }
}

/// A yamux connection whose new inbound streams wait in a short queue.
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    waiting: VecDeque<yamux::Stream>,
    waker: Option<Waker>,
    peer: PeerId,
    trusted: Trusted,
    /// Inbound streams given to the swarm and not yet dropped.
    live: Arc<AtomicUsize>,
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    fn new(io: C, config: Config, mode: yamux::Mode) -> Self {
        Self {
            connection: yamux::Connection::new(io, config.yamux, mode),
            waiting: VecDeque::new(),
            waker: None,
            peer: config.peer,
            trusted: config.trusted,
            live: Arc::default(),
        }
    }

    /// The connection's next inbound stream, driving it meanwhile.
    fn next_inbound(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<yamux::Stream, yamux::ConnectionError>> {
        match self.connection.poll_next_inbound(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            Poll::Ready(None) => Poll::Ready(Err(yamux::ConnectionError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether a stranger's connection already holds as many inbound
    /// streams as it may.
    fn stranger_full(&self) -> bool {
        !self.trusted.contains(&self.peer)
            && self.live.load(Ordering::Relaxed) + self.waiting.len()
                >= self.trusted.stranger_streams
    }

    /// A stream given to the swarm, counted while it lives.
    fn given(&self, inner: yamux::Stream) -> Stream {
        self.live.fetch_add(1, Ordering::Relaxed);
        Stream {
            inner,
            live: Some(Arc::clone(&self.live)),
        }
    }
}

/// A yamux stream; an inbound one counts towards its connection's
/// [`MAX_STRANGER_STREAMS`] until it is dropped.
#[derive(Debug)]
pub struct Stream {
    inner: yamux::Stream,
    live: Option<Arc<AtomicUsize>>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Substream = Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.waiting.pop_front() {
            return Poll::Ready(Ok(this.given(stream)));
        }
        loop {
            match this.next_inbound(cx) {
                Poll::Pending => {
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Dropped: reset at once.
                Poll::Ready(Ok(stream)) if this.stranger_full() => drop(stream),
                Poll::Ready(Ok(stream)) => return Poll::Ready(Ok(this.given(stream))),
            }
        }
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.get_mut()
            .connection
            .poll_new_outbound(cx)
            .map_ok(|inner| Stream { inner, live: None })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().connection.poll_close(cx)
    }

    /// Drives the connection; a new inbound stream is kept if fewer than
    /// [`MAX_WAITING_INBOUND_STREAMS`] wait (and a stranger's connection
    /// has room for it), else dropped, which resets it.
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = match this.next_inbound(cx) {
            Poll::Ready(Ok(stream)) => stream,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if this.waiting.len() >= MAX_WAITING_INBOUND_STREAMS || this.stranger_full() {
            drop(stream);
        } else {
            this.waiting.push_back(stream);
            if let Some(waker) = this.waker.take() {
                waker.wake();
            }
        }
        // Let the rest of the connection run before the next stream.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
