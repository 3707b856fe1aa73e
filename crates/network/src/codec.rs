//! The `/polykey/rpc/1` codec: one CBOR message per stream, read with a
//! byte bound. The wire format is the one libp2p's `cbor` codec speaks
//! (cbor4ii with serde); what differs is the reading: the message is
//! copied in 64 KiB chunks and refused as soon as it passes its bound,
//! instead of growing a zero-filled buffer one byte at a time (a 39 MiB page
//! took 13–21 s to read that way in a debug build).

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::prelude::*;
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

/// Bytes read from the stream at a time.
const CHUNK: usize = 64 * 1024;

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

/// CBOR requests and responses, each bounded in bytes.
pub struct Codec<Req, Resp> {
    request_maximum: u64,
    response_maximum: u64,
    phantom: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec refusing requests over `request_maximum` bytes and responses
    /// over `response_maximum`.
    pub fn new(request_maximum: u64, response_maximum: u64) -> Self {
        Self {
            request_maximum,
            response_maximum,
            phantom: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.request_maximum, self.response_maximum)
    }
}

/// Everything `io` sends until it closes, or an error once it passes
/// `maximum` bytes.
async fn read_bounded<T>(io: &mut T, maximum: u64) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let maximum = usize::try_from(maximum).unwrap_or(usize::MAX);
    let mut message = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Ok(message);
        }
        if message.len().saturating_add(n) > maximum {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message larger than the protocol allows",
            ));
        }
        message.extend_from_slice(&chunk[..n]);
    }
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
    cbor4ii::serde::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode<M: Serialize>(message: &M) -> io::Result<Vec<u8>> {
    cbor4ii::serde::to_vec(Vec::new(), message).map_err(io::Error::other)
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
        decode(&read_bounded(io, self.request_maximum).await?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode(&read_bounded(io, self.response_maximum).await?)
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
        write_counted(io, &encode(&request)?).await
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
        write_counted(io, &encode(&response)?).await
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
            assert_eq!(read_bounded(&mut within, 200 * 1024).await.unwrap(), bytes);
            let mut past = futures::io::Cursor::new(bytes);
            let error = read_bounded(&mut past, 200 * 1024 - 1).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        });
    }
}
