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

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future;
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};

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
/// What the windows of a yamux connection's streams may grow by, in all,
/// past the 256 KiB each starts with (libp2p: up to 1 GiB less those).
/// Growth helps a link whose bandwidth-delay product is larger than one
/// window (4 MiB is 80 MB/s at 50 ms); a sync page is 2 MiB.
pub const MAX_WINDOW_GROWTH: usize = 4 * 1024 * 1024;

/// What a peer may send unread on a QUIC connection, on all its streams
/// (libp2p's default: 15 MB): as much as the streams of a yamux
/// connection can carry past the bounds above (24 × 256 KiB). A sync page
/// (2 MiB) still streams whole: reading it gives the credit back.
pub const MAX_QUIC_CONNECTION_DATA: u32 = 6 * 1024 * 1024;
/// What a peer may send unread on one QUIC stream (libp2p's default:
/// 10 MB).
pub const MAX_QUIC_STREAM_DATA: u32 = 4 * 1024 * 1024;

/// The yamux protocol, making [`Muxer`]s with the bounds above.
#[derive(Debug, Clone)]
pub struct Config(yamux::Config);

impl Config {
    /// yamux's defaults with the windows' growth bounded.
    pub fn new() -> Self {
        let mut config = yamux::Config::default();
        config.set_max_num_streams(MAX_STREAMS);
        config.set_max_connection_receive_window(Some(
            MAX_STREAMS * yamux::DEFAULT_CREDIT as usize + MAX_WINDOW_GROWTH,
        ));
        Self(config)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
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
        future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Server)))
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
        future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Client)))
    }
}

/// A yamux connection whose new inbound streams wait in a short queue.
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    waiting: VecDeque<yamux::Stream>,
    waker: Option<Waker>,
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    fn new(io: C, config: yamux::Config, mode: yamux::Mode) -> Self {
        Self {
            connection: yamux::Connection::new(io, config, mode),
            waiting: VecDeque::new(),
            waker: None,
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
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.waiting.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        match this.next_inbound(cx) {
            Poll::Pending => {
                this.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            ready => ready,
        }
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.get_mut().connection.poll_new_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().connection.poll_close(cx)
    }

    /// Drives the connection; a new inbound stream is kept if fewer than
    /// [`MAX_WAITING_INBOUND_STREAMS`] wait, else dropped, which resets it.
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
        if this.waiting.len() >= MAX_WAITING_INBOUND_STREAMS {
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
