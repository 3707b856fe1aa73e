use flate2::read::GzDecoder;
#[cfg(feature = "save_kdbx4")]
use flate2::write::GzEncoder;
#[cfg(feature = "save_kdbx4")]
use flate2::Compression as Flate2Compression;
use std::cell::Cell;
use std::io::Read;
#[cfg(feature = "save_kdbx4")]
use std::io::Write;

/// POLYKEY: the most bytes a database's gzip streams (its payload and, in
/// KDBX 3.1, its compressed attachments) may unpack to, all of them
/// together: a hostile database (a few MiB of gzip) must not unpack to
/// gigabytes in memory.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

thread_local! {
    /// POLYKEY: bytes unpacked by the parse under way on this thread.
    static UNPACKED: Cell<usize> = const { Cell::new(0) };
}

/// POLYKEY: a parse begins with the whole budget.
pub(crate) fn begin_unpacking() {
    UNPACKED.with(|unpacked| unpacked.set(0));
}

/// POLYKEY: whether the last parse on this thread stopped at
/// [`MAX_DECOMPRESSED_BYTES`] (its error, however wrapped, says less).
pub fn unpacked_too_much() -> bool {
    UNPACKED.with(Cell::get) > MAX_DECOMPRESSED_BYTES
}

pub trait Compression {
    #[cfg(feature = "save_kdbx4")]
    fn compress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error>;
    fn decompress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error>;
}

pub struct NoCompression;

impl Compression for NoCompression {
    #[cfg(feature = "save_kdbx4")]
    fn compress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        Ok(in_buffer.to_vec())
    }
    fn decompress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        Ok(in_buffer.to_vec())
    }
}

pub struct GZipCompression;

impl Compression for GZipCompression {
    #[cfg(feature = "save_kdbx4")]
    fn compress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        let mut res = Vec::new();
        let mut encoder = GzEncoder::new(&mut res, Flate2Compression::default());
        encoder.write_all(in_buffer)?;
        encoder.flush()?;
        encoder.finish()?;
        Ok(res)
    }
    fn decompress(&self, in_buffer: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        // POLYKEY: at most what is left of this parse's budget, read a byte
        // past it to know it was exceeded.
        let spent = UNPACKED.with(Cell::get);
        let left = MAX_DECOMPRESSED_BYTES.saturating_sub(spent);
        let mut res = Vec::new();
        GzDecoder::new(in_buffer)
            .take(left as u64 + 1)
            .read_to_end(&mut res)?;
        if res.len() > left {
            UNPACKED.with(|unpacked| unpacked.set(usize::MAX));
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "the database unpacks to more than it may",
            ));
        }
        UNPACKED.with(|unpacked| unpacked.set(spent + res.len()));
        Ok(res)
    }
}
