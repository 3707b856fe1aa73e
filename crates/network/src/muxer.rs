//! How much a peer can send a connection unread: yamux, holding fewer of a
//! peer's new streams while the node is busy, and QUIC's windows.
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

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future;
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::yamux;

/// Inbound streams kept for the swarm while it is not taking them.
pub const MAX_WAITING_INBOUND_STREAMS: usize = 8;
/// Inbound streams of one connection negotiating their protocol at once
/// (libp2p's default is 128). A negotiation holds what the peer sent
/// until it ends or times out (10 s): kept negotiating with proposals it
/// never reads the answers to, a stream holds the 256 KiB it may send unread and a little more.
pub const MAX_NEGOTIATING_INBOUND_STREAMS: usize = 16;

/// What a peer may send unread on a QUIC connection, on all its streams
/// (libp2p's default: 15 MB): as much as the streams of a yamux
/// connection can carry past the bounds above (24 × 256 KiB). A sync page
/// (2 MiB) still streams whole: reading it gives the credit back.
pub const MAX_QUIC_CONNECTION_DATA: u32 = 6 * 1024 * 1024;
/// What a peer may send unread on one QUIC stream (libp2p's default:
/// 10 MB).
pub const MAX_QUIC_STREAM_DATA: u32 = 4 * 1024 * 1024;

/// yamux's configuration, making [`Muxer`]s.
#[derive(Debug, Clone, Default)]
pub struct Config(yamux::Config);

impl Config {
    /// As [`libp2p::yamux::Config::default`], for the transport builders.
    pub fn new() -> Self {
        Self::default()
    }
}

impl UpgradeInfo for Config {
    type Info = <yamux::Config as UpgradeInfo>::Info;
    type InfoIter = <yamux::Config as UpgradeInfo>::InfoIter;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.protocol_info()
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_inbound(self, io: C, info: Self::Info) -> Self::Future {
        future::ready(
            self.0
                .upgrade_inbound(io, info)
                .into_inner()
                .map(Muxer::new),
        )
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_outbound(self, io: C, info: Self::Info) -> Self::Future {
        future::ready(
            self.0
                .upgrade_outbound(io, info)
                .into_inner()
                .map(Muxer::new),
        )
    }
}

/// A yamux connection whose new inbound streams wait in a short queue.
pub struct Muxer<C> {
    inner: yamux::Muxer<C>,
    waiting: VecDeque<yamux::Stream>,
    waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(inner: yamux::Muxer<C>) -> Self {
        Self {
            inner,
            waiting: VecDeque::new(),
            waker: None,
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Substream = yamux::Stream;
    type Error = yamux::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.waiting.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        match Pin::new(&mut this.inner).poll_inbound(cx) {
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
        Pin::new(&mut self.get_mut().inner).poll_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    /// Drives the connection as yamux's own `poll` does, but a new inbound
    /// stream comes here (the inner queue stays empty): kept if fewer than
    /// [`MAX_WAITING_INBOUND_STREAMS`] wait, else dropped, which resets it.
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = match Pin::new(&mut this.inner).poll_inbound(cx) {
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
