//! The `/polykey/rpc/1` codec: one CBOR message per stream, read with a
//! byte bound. The wire format is the one libp2p's `cbor` codec speaks
//! (cbor4ii with serde); what differs is the reading: the message is
//! read in blocks (a response's from 64 KiB up, a request's from 512 bytes,
//! once its first 256 have come) and refused as soon as it passes its bound,
//! instead of growing a zero-filled buffer one byte at a time (a 39 MiB page
//! took 13–21 s to read that way in a debug build).
//!
//! A request is read only within an allowance ([`Reading`]): each
//! connection's own 128 KiB, then a share of the node's, so streams a peer
//! opens and never finishes cannot make the node hold more than the
//! [`crate::limits`] say (before, 100 streams on each of 256 connections
//! could each hold up to 1 MiB).

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::prelude::*;
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

use crate::limits::{REQUEST_READING_OWN, REQUEST_READING_PER_CONNECTION, REQUEST_READING_SHARED};

/// The first block [`read_bounded`] reads a response into.
const CHUNK: usize = 64 * 1024;
/// The first block a request is read into, once its first [`HEAD`] bytes
/// came: twice those.
const REQUEST_CHUNK: usize = 2 * HEAD;

/// Bytes of RPC messages written by every node of this process.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes of RPC messages (requests and responses, as encoded) that the
/// nodes of this process have sent to peers so far: what sync puts on the
/// wire, before the transport's own framing and encryption.
pub fn bytes_written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

async fn write_counted<T>(io: &mut T, bytes: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    io.write_all(bytes).await?;
    WRITTEN.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// What the requests being read on all of a node's connections hold past
/// each connection's own allowance ([`REQUEST_READING_OWN`]), bounded by
/// [`REQUEST_READING_SHARED`].
#[derive(Debug, Default)]
pub(crate) struct Reading {
    shared: AtomicUsize,
}

/// Bytes held by the requests being read on one connection.
type OnConnection = Arc<Mutex<usize>>;

/// What a connection holds past its own allowance.
fn past_own(held: usize) -> usize {
    held.saturating_sub(REQUEST_READING_OWN)
}

/// Why a request was dropped unread.
fn no_room() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        "too many requests are being read; try again",
    )
}

impl Reading {
    /// Take `bytes` for a request being read on `connection`, or an error
    /// if that would pass the connection's bound or the shared one.
    fn take(&self, connection: &OnConnection, bytes: usize) -> io::Result<()> {
        let mut held = connection.lock().unwrap_or_else(PoisonError::into_inner);
        let after = held.saturating_add(bytes);
        let extra = past_own(after) - past_own(*held);
        if past_own(after) > REQUEST_READING_PER_CONNECTION {
            return Err(no_room());
        }
        if extra > 0 {
            self.shared
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |shared| {
                    shared
                        .checked_add(extra)
                        .filter(|total| *total <= REQUEST_READING_SHARED)
                })
                .map_err(|_| no_room())?;
        }
        *held = after;
        Ok(())
    }

    /// Give back `bytes` taken on `connection`.
    fn give_back(&self, connection: &OnConnection, bytes: usize) {
        let mut held = connection.lock().unwrap_or_else(PoisonError::into_inner);
        let after = held.saturating_sub(bytes);
        let freed = past_own(*held) - past_own(after);
        if freed > 0 {
            self.shared.fetch_sub(freed, Ordering::AcqRel);
        }
        *held = after;
    }
}

/// The bytes one message being read holds from its allowance (none for a
/// response: the node asked for it, and one page at a time); given back
/// as the blocks are freed, and the rest when it drops.
struct Held<'a> {
    allowance: Option<(&'a Reading, &'a OnConnection)>,
    bytes: usize,
}

impl<'a> Held<'a> {
    /// A message read with no allowance.
    fn unbounded() -> Self {
        Held {
            allowance: None,
            bytes: 0,
        }
    }

    /// A request read on `connection`, within the node's `reading`.
    fn within(reading: &'a Reading, connection: &'a OnConnection) -> Self {
        Held {
            allowance: Some((reading, connection)),
            bytes: 0,
        }
    }

    /// Take `bytes` before allocating them.
    fn take(&mut self, bytes: usize) -> io::Result<()> {
        if let Some((reading, connection)) = self.allowance {
            reading.take(connection, bytes)?;
        }
        self.bytes += bytes;
        Ok(())
    }

    /// Give back `bytes` just freed.
    fn give_back(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        if let Some((reading, connection)) = self.allowance {
            reading.give_back(connection, bytes);
        }
        self.bytes -= bytes;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.give_back(self.bytes);
    }
}

/// CBOR requests and responses, each bounded in bytes.
pub struct Codec<Req, Resp> {
    request_maximum: u64,
    response_maximum: u64,
    /// The node's allowance for requests being read.
    reading: Arc<Reading>,
    /// The allowance of the connection this codec reads on. libp2p clones
    /// the behaviour's codec (which has none) once for each connection, and
    /// that one for each of the connection's streams, so each connection
    /// gets its own and its streams share it.
    connection: Option<OnConnection>,
    phantom: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec refusing requests over `request_maximum` bytes and responses
    /// over `response_maximum`.
    pub fn new(request_maximum: u64, response_maximum: u64) -> Self {
        Self {
            request_maximum,
            response_maximum,
            reading: Arc::default(),
            connection: None,
            phantom: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            request_maximum: self.request_maximum,
            response_maximum: self.response_maximum,
            reading: Arc::clone(&self.reading),
            connection: Some(self.connection.clone().unwrap_or_default()),
            phantom: PhantomData,
        }
    }
}

/// A message's bytes, as encoded or as read: a transfer's hold secrets, so
/// every buffer it outgrows is wiped before it is freed (a `Vec` growing
/// by itself leaves each one as it was), and so is the last when it drops.
struct Message(Vec<u8>);

impl Message {
    /// Append `input`, moving to a buffer twice as large when it does not
    /// fit and wiping the one left.
    fn push(&mut self, input: &[u8]) {
        let needed = self.0.len().saturating_add(input.len());
        if needed > self.0.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2)));
            grown.extend_from_slice(&self.0);
            polykey_keys::wipe(&mut self.0);
            self.0 = grown;
        }
        self.0.extend_from_slice(input);
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Message({} bytes)", self.0.len())
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        polykey_keys::wipe(&mut self.0);
    }
}

impl cbor4ii::core::enc::Write for Message {
    type Error = std::convert::Infallible;

    fn push(&mut self, input: &[u8]) -> Result<(), Self::Error> {
        Message::push(self, input);
        Ok(())
    }
}

/// Bytes a message must send before any block is allocated for it.
const HEAD: usize = 256;

/// The largest block [`read_bounded`] reads into.
const MAX_BLOCK: usize = 4 * 1024 * 1024;

/// What a read may still take after `total` of `maximum` bytes: the rest
/// of the bound, plus the one byte that shows it passed.
fn still_allowed(maximum: usize, total: usize) -> usize {
    maximum.saturating_sub(total).saturating_add(1)
}

/// The size of the block after one of `len` bytes: twice as large, up to
/// [`MAX_BLOCK`], and never more than [`still_allowed`] (a peer's message
/// just under its bound would otherwise have the node allocate and wipe a
/// block of up to twice what it still may send).
fn next_block(len: usize, maximum: usize, total: usize) -> usize {
    len.saturating_mul(2)
        .min(MAX_BLOCK)
        .min(still_allowed(maximum, total))
}

/// Why a message was cut off.
fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "message larger than the protocol allows",
    )
}

/// Everything `io` sends until it closes, or an error once it passes
/// `maximum` bytes; a response, read with no allowance.
#[cfg(test)]
async fn read_bounded<T>(io: &mut T, maximum: u64) -> io::Result<Message>
where
    T: AsyncRead + Unpin + Send,
{
    read_held(io, maximum, CHUNK, &mut Held::unbounded()).await
}

/// Everything `io` sends until it closes, or an error once it passes
/// `maximum` bytes or `held` cannot take the next block.
///
/// Read straight into blocks, each twice the last (from `first` up to
/// [`MAX_BLOCK`]), then joined once: every byte is copied once, where a
/// buffer that doubles copies what it holds again at each step (a 10 MiB
/// page was copied twice over). A message that fits its first block is
/// not copied at all.
async fn read_held<T>(
    io: &mut T,
    maximum: u64,
    first: usize,
    held: &mut Held<'_>,
) -> io::Result<Message>
where
    T: AsyncRead + Unpin + Send,
{
    let maximum = usize::try_from(maximum).unwrap_or(usize::MAX);
    let mut full: Vec<Message> = Vec::new();
    // Nothing is taken or allocated until the first HEAD bytes have come
    // (or all, when fewer): a stream opened and left silent, or sending a
    // byte now and then, holds no allowance; then the first block (for a
    // request, twice that: a request holds at most about three times what
    // it sent, its blocks and then their join).
    let mut head = [0u8; HEAD];
    let mut filled = 0;
    while filled < HEAD {
        match io.read(&mut head[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                zeroize::Zeroize::zeroize(&mut head);
                return Err(e);
            }
        }
    }
    let first = if filled < HEAD {
        filled
    } else {
        first.min(still_allowed(maximum, 0)).max(filled)
    };
    let taken = if filled > maximum {
        Err(too_large())
    } else {
        held.take(first)
    };
    if let Err(e) = taken {
        zeroize::Zeroize::zeroize(&mut head);
        return Err(e);
    }
    let mut block = Message(vec![0u8; first]);
    block.0[..filled].copy_from_slice(&head[..filled]);
    zeroize::Zeroize::zeroize(&mut head);
    if filled < HEAD {
        return Ok(block);
    }
    let mut total = filled;
    loop {
        if filled == block.0.len() {
            let next = next_block(block.0.len(), maximum, total);
            held.take(next)?;
            full.push(std::mem::replace(&mut block, Message(vec![0u8; next])));
            filled = 0;
        }
        let room = (block.0.len() - filled).min(still_allowed(maximum, total));
        let n = io.read(&mut block.0[filled..filled + room]).await?;
        if n == 0 {
            break;
        }
        total += n;
        if total > maximum {
            return Err(too_large());
        }
        filled += n;
    }
    if full.is_empty() {
        block.0.truncate(filled);
        return Ok(block);
    }
    held.take(total)?;
    let mut message = Message(Vec::with_capacity(total));
    let mut blocks = block.0.len();
    for earlier in &full {
        message.push(&earlier.0);
        blocks += earlier.0.len();
    }
    message.push(&block.0[..filled]);
    drop((full, block));
    held.give_back(blocks);
    Ok(message)
}

/// A request as the codec decodes one from a peer's bytes (public for
/// the fuzz targets).
pub fn decode_request(bytes: &[u8]) -> io::Result<crate::protocol::Request> {
    decode(bytes)
}

/// A response as the codec decodes one from a peer's bytes (public for
/// the fuzz targets).
pub fn decode_response(bytes: &[u8]) -> io::Result<crate::protocol::Response> {
    decode(bytes)
}

fn decode<M: DeserializeOwned>(bytes: &[u8]) -> io::Result<M> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| {
        // What a list past its bound (and the like) says, as it says it.
        let why = match e {
            cbor4ii::serde::DecodeError::Custom(why) => why.into_string(),
            e => e.to_string(),
        };
        io::Error::new(io::ErrorKind::InvalidData, why)
    })
}

/// Counts what an encoding would write.
struct Length(usize);

impl cbor4ii::core::enc::Write for Length {
    type Error = std::convert::Infallible;

    fn push(&mut self, input: &[u8]) -> Result<(), Self::Error> {
        self.0 = self.0.saturating_add(input.len());
        Ok(())
    }
}

/// The message encoded into a buffer of its exact length (measured by
/// encoding it once into [`Length`]): no buffer is outgrown, copied and
/// wiped on the way.
fn encode<M: Serialize>(message: &M) -> io::Result<Message> {
    let mut length = cbor4ii::serde::Serializer::new(Length(0));
    message.serialize(&mut length).map_err(io::Error::other)?;
    let capacity = length.into_inner().0;
    let mut serializer = cbor4ii::serde::Serializer::new(Message(Vec::with_capacity(capacity)));
    message
        .serialize(&mut serializer)
        .map_err(io::Error::other)?;
    Ok(serializer.into_inner())
}

impl<Req, Resp> libp2p::request_response::Codec for Codec<Req, Resp>
where
    Req: Send + Serialize + DeserializeOwned,
    Resp: Send + Serialize + DeserializeOwned,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        debug_assert!(
            self.connection.is_some(),
            "a request read on the behaviour's own codec, not a connection's"
        );
        let connection = self.connection.get_or_insert_default();
        let mut held = Held::within(&self.reading, connection);
        let message = read_held(io, self.request_maximum, REQUEST_CHUNK, &mut held).await?;
        decode(&message.0)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut held = Held::unbounded();
        decode(
            &read_held(io, self.response_maximum, CHUNK, &mut held)
                .await?
                .0,
        )
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Req,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_counted(io, &encode(&request)?.0).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_counted(io, &encode(&response)?.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_past_its_bound_is_refused_and_one_within_reads_whole() {
        futures::executor::block_on(async {
            let bytes = vec![7u8; 200 * 1024];
            let mut within = futures::io::Cursor::new(bytes.clone());
            assert_eq!(
                read_bounded(&mut within, 200 * 1024).await.unwrap().0,
                bytes
            );
            let mut past = futures::io::Cursor::new(bytes);
            let error = read_bounded(&mut past, 200 * 1024 - 1).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn messages_of_every_size_around_the_block_seams_read_whole() {
        futures::executor::block_on(async {
            // Sizes on and beside each block's end (64 KiB, then 128, 256…).
            let mut seams = vec![0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1];
            let mut end = CHUNK;
            let mut block = CHUNK;
            while end < 10 * 1024 * 1024 {
                block = (block * 2).min(MAX_BLOCK);
                end += block;
                seams.extend([end - 1, end, end + 1]);
            }
            for len in seams {
                let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                let read = read_bounded(&mut futures::io::Cursor::new(bytes.clone()), len as u64)
                    .await
                    .unwrap();
                assert!(read.0 == bytes, "a message of {len} bytes");
                assert!(
                    read.0.capacity() <= len.max(CHUNK),
                    "{len} bytes held in one buffer"
                );
                let past = read_bounded(
                    &mut futures::io::Cursor::new(bytes),
                    len.saturating_sub(1) as u64,
                )
                .await;
                if len > 0 {
                    assert_eq!(past.unwrap_err().kind(), io::ErrorKind::InvalidData);
                }
            }
        });
    }

    #[test]
    fn no_block_is_larger_than_what_the_bound_still_allows() {
        // At the bound: one byte, to see the end or the byte too many.
        assert_eq!(next_block(CHUNK, CHUNK, CHUNK), 1);
        // A 1 MiB request after 960 KiB: what is left, plus one.
        assert_eq!(
            next_block(512 * 1024, 1024 * 1024, 960 * 1024),
            64 * 1024 + 1
        );
        assert_eq!(next_block(MAX_BLOCK, usize::MAX, 1 << 30), MAX_BLOCK);
        assert_eq!(next_block(CHUNK, usize::MAX, CHUNK), 2 * CHUNK);
        futures::executor::block_on(async {
            // A request of exactly 1 MiB, its last block cut to what is
            // left, is read whole.
            let bytes = vec![5u8; 1024 * 1024];
            let read = read_bounded(&mut futures::io::Cursor::new(bytes.clone()), 1024 * 1024)
                .await
                .unwrap();
            assert!(read.0 == bytes);
        });
    }

    /// A peer sending one byte at a time.
    struct Trickle(futures::io::Cursor<Vec<u8>>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(1);
            std::pin::Pin::new(&mut self.0).poll_read(cx, &mut buf[..n])
        }
    }

    #[test]
    fn a_message_trickling_in_a_byte_at_a_time_reads_whole_up_to_its_bound() {
        futures::executor::block_on(async {
            let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            let mut within = Trickle(futures::io::Cursor::new(bytes.clone()));
            assert_eq!(read_bounded(&mut within, 5000).await.unwrap().0, bytes);
            let mut past = Trickle(futures::io::Cursor::new(bytes));
            let error = read_bounded(&mut past, 4999).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn a_message_grown_piece_by_piece_holds_every_piece_in_order() {
        let mut message = Message(Vec::new());
        let mut expected = Vec::new();
        for (i, len) in [0usize, 1, 7, 4096, 3, 65_536, 100_000, 1]
            .iter()
            .enumerate()
        {
            let piece: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            message.push(&piece);
            expected.extend_from_slice(&piece);
            assert_eq!(message.0, expected, "after piece {i}");
            assert!(message.0.capacity() < 2 * expected.len().max(1) + 100_000);
        }
    }

    type Rpc = Codec<crate::protocol::Request, crate::protocol::Response>;

    fn held(codec: &Rpc) -> usize {
        *codec.connection.as_ref().unwrap().lock().unwrap()
    }

    #[test]
    fn each_connection_reads_within_its_own_allowance_and_a_share_of_the_nodes() {
        let node = Rpc::new(1024 * 1024, 1024);
        // libp2p clones the behaviour's codec for each connection, and the
        // connection's for each stream: the streams share one allowance.
        let (first, second) = (node.clone(), node.clone());
        let stream = first.clone();
        let own = first.connection.as_ref().unwrap();
        assert!(Arc::ptr_eq(own, stream.connection.as_ref().unwrap()));
        assert!(!Arc::ptr_eq(own, second.connection.as_ref().unwrap()));
        let reading = &node.reading;
        // Within its own allowance a connection takes nothing shared.
        reading.take(own, REQUEST_READING_OWN).unwrap();
        assert_eq!(reading.shared.load(Ordering::Acquire), 0);
        // Past it, up to its bound, then no more.
        reading.take(own, REQUEST_READING_PER_CONNECTION).unwrap();
        assert_eq!(
            reading.shared.load(Ordering::Acquire),
            REQUEST_READING_PER_CONNECTION
        );
        assert_eq!(
            reading.take(own, 1).unwrap_err().kind(),
            io::ErrorKind::OutOfMemory
        );
        // Given back, the shared part goes first.
        reading.give_back(own, REQUEST_READING_PER_CONNECTION + 10);
        assert_eq!(held(&first), REQUEST_READING_OWN - 10);
        assert_eq!(reading.shared.load(Ordering::Acquire), 0);
        reading.give_back(own, REQUEST_READING_OWN - 10);
        assert_eq!(held(&first), 0);

        // Connections past their own allowances fill the shared one; a
        // connection's own allowance is still there once it is full.
        let mut flood: Vec<Rpc> = Vec::new();
        loop {
            let connection = node.clone();
            let taken = reading.take(
                connection.connection.as_ref().unwrap(),
                REQUEST_READING_OWN + REQUEST_READING_PER_CONNECTION,
            );
            flood.push(connection);
            if taken.is_err() {
                break;
            }
        }
        assert!(flood.len() * REQUEST_READING_PER_CONNECTION > REQUEST_READING_SHARED);
        assert!(reading.shared.load(Ordering::Acquire) <= REQUEST_READING_SHARED);
        let device = node.clone();
        let device_allowance = device.connection.as_ref().unwrap();
        reading.take(device_allowance, REQUEST_READING_OWN).unwrap();
        // Past it, the shared allowance has less than a whole request left.
        assert!(reading
            .take(device_allowance, REQUEST_READING_PER_CONNECTION)
            .is_err());
    }

    #[test]
    fn a_request_read_gives_back_all_it_held_and_one_past_the_allowance_is_dropped() {
        futures::executor::block_on(async {
            let node = Rpc::new(u64::MAX, 1024);
            let connection = node.clone();
            let allowance = (
                &*connection.reading,
                connection.connection.as_ref().unwrap(),
            );
            // The largest request reads whole within one connection's bound.
            let bytes: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 249) as u8).collect();
            let mut within = Held::within(allowance.0, allowance.1);
            let read = read_held(
                &mut futures::io::Cursor::new(bytes.clone()),
                1024 * 1024,
                REQUEST_CHUNK,
                &mut within,
            )
            .await
            .unwrap();
            assert!(read.0 == bytes);
            // Its blocks were given back once joined; the message remains.
            assert_eq!(within.bytes, bytes.len());
            drop((read, within));
            assert_eq!(held(&connection), 0);
            assert_eq!(connection.reading.shared.load(Ordering::Acquire), 0);
            // One larger than the connection's bound (with no bound in
            // bytes of its own) is dropped, and gives back what it held.
            let huge = vec![1u8; REQUEST_READING_OWN + REQUEST_READING_PER_CONNECTION + 1];
            let mut past = Held::within(allowance.0, allowance.1);
            let error = read_held(
                &mut futures::io::Cursor::new(huge),
                u64::MAX,
                REQUEST_CHUNK,
                &mut past,
            )
            .await
            .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
            drop(past);
            assert_eq!(held(&connection), 0);
            assert_eq!(connection.reading.shared.load(Ordering::Acquire), 0);
        });
    }

    /// A peer that opened a stream, sends a few bytes and then nothing.
    struct Stalled(Vec<u8>);

    impl AsyncRead for Stalled {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            if self.0.is_empty() {
                return std::task::Poll::Pending;
            }
            // A byte at a time, as a peer trickling them would.
            buf[0] = self.0.remove(0);
            std::task::Poll::Ready(Ok(1))
        }
    }

    #[test]
    fn a_stream_that_sends_little_holds_a_small_multiple_of_it() {
        let node = Rpc::new(1024 * 1024, 1024);
        let connection = node.clone();
        for (sent, most) in [
            (0, 0),
            (1, 0),
            (HEAD - 1, 0),
            (HEAD, 2 * HEAD),
            (300, 2 * HEAD),
        ] {
            let mut held =
                Held::within(&connection.reading, connection.connection.as_ref().unwrap());
            let mut stalled = Stalled(vec![7; sent]);
            let reading = read_held(&mut stalled, 1024 * 1024, REQUEST_CHUNK, &mut held);
            assert!(futures::FutureExt::now_or_never(reading).is_none());
            assert_eq!(held.bytes, most, "after {sent} bytes");
            drop(held);
            assert_eq!(self::held(&connection), 0);
        }
    }

    #[test]
    fn a_requests_lists_are_refused_as_they_are_read_past_their_bounds() {
        use crate::protocol::{Request, MAX_HAVES};
        let fetch = |haves: Vec<String>| {
            encode(&Request::Fetch {
                vault: "v".into(),
                want: "w".into(),
                haves,
                skip: 0,
                from: 0,
                page: 0,
            })
            .unwrap()
        };
        let within = fetch(vec!["h".into(); MAX_HAVES]);
        assert!(matches!(
            decode_request(&within.0).unwrap(),
            Request::Fetch { haves, .. } if haves.len() == MAX_HAVES
        ));
        // A million empty names in 1 MiB (24 MiB once decoded) is refused
        // at the one past the bound, not after all were read.
        let flood = fetch(vec![String::new(); 1_000_000]);
        assert!(flood.0.len() <= 1024 * 1024);
        let error = decode_request(&flood.0).unwrap_err().to_string();
        assert!(error.contains("at most 64"), "{error}");
        let known = encode(&Request::Chains {
            known: vec![
                crate::protocol::ChainPosition {
                    node: polykey_keys::RootKeypair::from_seed(&[1; 32]).node_id(),
                    seq: 0,
                };
                crate::protocol::MAX_CHAINS + 1
            ],
        })
        .unwrap();
        assert!(decode_request(&known.0).is_err());
        // A list that may be left out still may be (as older nodes send).
        #[derive(Serialize)]
        enum Older {
            Shared { vault: Option<String> },
        }
        let older = encode(&Older::Shared { vault: None }).unwrap();
        assert!(matches!(
            decode_request(&older.0).unwrap(),
            Request::Shared { vault: None, revocations } if revocations.is_empty()
        ));
    }

    /// A peer's answers are read before the node counts what they list:
    /// each list is refused at the one past its bound as it is read. A
    /// million tiny vaults fit in a 40 MiB answer; decoded whole they held
    /// hundreds of MiB before the node refused them.
    #[test]
    fn an_answers_lists_are_refused_as_they_are_read_past_their_bounds() {
        use crate::protocol::{
            ChainUpdate, Response, SharedVault, VaultSummary, WireDeletion, MAX_CHAINS,
            MAX_CHAIN_CLAIMS, MAX_DELETIONS_PAGE, MAX_SHARED_VAULTS, MAX_SHARE_NODES, MAX_VAULTS,
        };
        let node = polykey_keys::RootKeypair::from_seed(&[1; 32]).node_id();
        let summary = VaultSummary {
            id: String::new(),
            name: String::new(),
            renamed_at: 0,
            head: String::new(),
            access: None,
        };
        let vaults = |n| Response::Vaults {
            vaults: vec![summary.clone(); n],
        };
        let deletion = WireDeletion {
            vault: String::new(),
            head: String::new(),
            deleted_at: 0,
            by: node,
            signature: Vec::new(),
        };
        let deletions = |n| Response::Deletions {
            deletions: vec![deletion.clone(); n],
            more: false,
        };
        let shared = |n, nodes| {
            let vault = SharedVault {
                id: String::new(),
                name: String::new(),
                head: String::new(),
                write: false,
                nodes: vec![node; nodes],
                removed: Vec::new(),
                served: Vec::new(),
                writers: Vec::new(),
                at: 0,
                signature: Vec::new(),
            };
            Response::Shared {
                vaults: vec![vault; n],
            }
        };
        let chains = |n| {
            Response::Chains(vec![
                ChainUpdate {
                    node,
                    claims: Vec::new()
                };
                n
            ])
        };
        let cases = [
            (vaults(MAX_VAULTS), vaults(MAX_VAULTS + 1)),
            (
                deletions(MAX_DELETIONS_PAGE),
                deletions(MAX_DELETIONS_PAGE + 1),
            ),
            (
                shared(MAX_SHARED_VAULTS, 1),
                shared(MAX_SHARED_VAULTS + 1, 1),
            ),
            (shared(1, MAX_SHARE_NODES), shared(1, MAX_SHARE_NODES + 1)),
            (chains(MAX_CHAINS), chains(MAX_CHAINS + 1)),
        ];
        for (within, past) in cases {
            assert!(decode_response(&encode(&within).unwrap().0).is_ok());
            let error = decode_response(&encode(&past).unwrap().0).unwrap_err();
            assert!(error.to_string().contains("at most"), "{error}");
        }
        // A chain's claims too (each a signed claim, checked later).
        let claim = polykey_gestalts::SignedClaim {
            payload: String::new(),
            signatures: Vec::new(),
        };
        let claims = |n| {
            Response::Chains(vec![ChainUpdate {
                node,
                claims: vec![claim.clone(); n],
            }])
        };
        assert!(decode_response(&encode(&claims(MAX_CHAIN_CLAIMS)).unwrap().0).is_ok());
        assert!(decode_response(&encode(&claims(MAX_CHAIN_CLAIMS + 1)).unwrap().0).is_err());
        // And a node's whole chain, answered (never asked for by a node,
        // but read as any answer is): a million empty claims fit.
        let chain = |n| Response::Sigchain(vec![claim.clone(); n]);
        let longest = polykey_gestalts::sigchain::MAX_CHAIN_LEN;
        assert!(decode_response(&encode(&chain(longest)).unwrap().0).is_ok());
        assert!(decode_response(&encode(&chain(longest + 1)).unwrap().0).is_err());
        // The flood: a million tiny vaults within the answer's bound.
        let flood = encode(&vaults(1_000_000)).unwrap();
        assert!(flood.0.len() as u64 <= crate::protocol::MAX_RESPONSE_BYTES);
        assert!(decode_response(&flood.0).is_err());
    }

    #[test]
    fn a_response_encodes_to_what_libp2ps_cbor_codec_writes() {
        use crate::protocol::{Response, WireObject};
        let response = Response::Objects {
            objects: vec![WireObject {
                id: "ab".repeat(20),
                kind: 1,
                data: vec![9u8; 300_000],
                base: None,
                part: None,
            }],
            total: 1,
        };
        let ours = encode(&response).unwrap();
        let theirs = cbor4ii::serde::to_vec(Vec::new(), &response).unwrap();
        assert_eq!(ours.0, theirs);
        // Encoded into a buffer of its exact length, never grown.
        assert_eq!(ours.0.capacity(), theirs.len());
        let back = decode_response(&ours.0).unwrap();
        assert_eq!(encode(&back).unwrap().0, theirs);
    }
}
