//! The sealed stream of a backup file (docs/backup-format.md): a header
//! in the clear naming the Argon2id cost and salt, then the content in
//! chunks, each sealed with XChaCha20-Poly1305 under the key the
//! passphrase derives, bound to the header, its place in the stream and
//! whether it is the last. A wrong passphrase fails the first chunk; a
//! changed, dropped, reordered or appended chunk, or a file cut short,
//! fails where it happens; nothing unauthenticated is ever handed on.

use std::io::{Read, Write};

use polykey_keys::{KdfParams, Password, SymmetricKey};
use zeroize::Zeroizing;

use super::BackupError;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"PKBACKUP";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1024 * 1024;
/// The longest header this code reads.
const MAX_HEADER: usize = 4096;
/// A sealed chunk: a nonce, the chunk, a tag.
const MAX_SEALED: usize = CHUNK + polykey_keys::aead::NONCE_LEN + polykey_keys::aead::TAG_LEN;

/// The most Argon2id cost a reader accepts: four times the default
/// profile's memory and passes (what a backup is written with).
const MAX_READ_MEMORY_KIB: u32 = 4 * polykey_keys::kdf::DEFAULT_MEMORY_KIB;
const MAX_READ_ITERATIONS: u32 = 4 * polykey_keys::kdf::DEFAULT_ITERATIONS;
const MAX_READ_PARALLELISM: u32 = 4;

/// What the header holds (JSON, in the clear).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    kdf: KdfParams,
    chunk: usize,
    /// [`KEY_CHECK`] sealed under the key (hex): tells a wrong passphrase
    /// from a damaged first chunk.
    check: String,
}

/// What the key check seals (nothing) and binds it to.
const KEY_CHECK: &[u8] = b"Polykey backup key check, format 1";

/// The bytes every chunk is bound to: the header as written, the chunk's
/// index and whether it is the last.
fn chunk_aad(header: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 9);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// Writes a backup's content sealed under a passphrase, chunk by chunk;
/// [`SealedWriter::finish`] seals the last chunk (a stream never
/// finished does not open).
pub struct SealedWriter<W: Write> {
    out: W,
    key: SymmetricKey,
    header: Vec<u8>,
    buffer: Zeroizing<Vec<u8>>,
    index: u64,
    written: u64,
}

impl<W: Write> SealedWriter<W> {
    /// Derive the key from `passphrase` with `kdf` (its cost and fresh
    /// salt) and write the header.
    pub fn new(out: W, passphrase: &Password, kdf: KdfParams) -> Result<Self, BackupError> {
        let key = kdf
            .derive(passphrase)
            .map_err(|e| BackupError::Damaged(e.to_string()))?;
        Self::with_key(out, key, kdf)
    }

    /// Write the header with `kdf` (whose salt and cost made `key` from
    /// the passphrase), for backups made on a schedule with a key derived
    /// once.
    pub fn with_key(mut out: W, key: SymmetricKey, kdf: KdfParams) -> Result<Self, BackupError> {
        let check = data_encoding::HEXLOWER.encode(&key.seal(b"", KEY_CHECK));
        let json = serde_json::to_vec(&Header {
            kdf,
            chunk: CHUNK,
            check,
        })
        .map_err(|e| BackupError::Damaged(e.to_string()))?;
        let mut header = Vec::with_capacity(14 + json.len());
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
        header.extend_from_slice(&json);
        out.write_all(&header).map_err(BackupError::write)?;
        Ok(Self {
            out,
            key,
            written: header.len() as u64,
            header,
            buffer: Zeroizing::new(Vec::with_capacity(CHUNK)),
            index: 0,
        })
    }

    /// Add content.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), BackupError> {
        while !bytes.is_empty() {
            let room = CHUNK - self.buffer.len();
            let take = room.min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == CHUNK {
                self.seal_chunk(false)?;
            }
        }
        Ok(())
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), BackupError> {
        let sealed = self
            .key
            .seal(&self.buffer, &chunk_aad(&self.header, self.index, last));
        let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        self.out
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.out.write_all(&sealed))
            .map_err(BackupError::write)?;
        self.written += 4 + sealed.len() as u64;
        self.index += 1;
        zeroize::Zeroize::zeroize(&mut *self.buffer);
        self.buffer.clear();
        Ok(())
    }

    /// Seal what is left as the last chunk; returns the writer and the
    /// bytes written in all.
    pub fn finish(mut self) -> Result<(W, u64), BackupError> {
        self.seal_chunk(true)?;
        self.out.flush().map_err(BackupError::write)?;
        Ok((self.out, self.written))
    }
}

/// Reads a backup's content back, chunk by chunk, each authenticated
/// before any of it is handed on.
pub struct SealedReader<R: Read> {
    input: R,
    key: SymmetricKey,
    header: Vec<u8>,
    chunk: Zeroizing<Vec<u8>>,
    at: usize,
    index: u64,
    ended: bool,
}

impl<R: Read> SealedReader<R> {
    /// Read the header, check it, derive the key from `passphrase` and
    /// check the key against the header's check (a wrong passphrase is
    /// told apart from damage), then open the first chunk.
    pub fn new(mut input: R, passphrase: &Password) -> Result<Self, BackupError> {
        let mut fixed = [0u8; 14];
        read_exact(&mut input, &mut fixed).map_err(|e| match e {
            BackupError::Truncated => BackupError::NotABackup,
            e => e,
        })?;
        if &fixed[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != VERSION {
            return Err(BackupError::NewerVersion(version));
        }
        let len = u32::from_le_bytes([fixed[10], fixed[11], fixed[12], fixed[13]]) as usize;
        if len > MAX_HEADER {
            return Err(BackupError::Damaged("the header is too long".into()));
        }
        let mut json = vec![0u8; len];
        read_exact(&mut input, &mut json)?;
        let parsed: Header = serde_json::from_slice(&json)
            .map_err(|_| BackupError::Damaged("the header is unreadable".into()))?;
        if parsed.chunk != CHUNK {
            return Err(BackupError::Damaged("an unknown chunk size".into()));
        }
        // Past the cost this code writes, by a margin: a file cannot make
        // this device spend gigabytes or minutes before it is checked.
        if parsed.kdf.memory_kib > MAX_READ_MEMORY_KIB
            || parsed.kdf.iterations > MAX_READ_ITERATIONS
            || parsed.kdf.parallelism > MAX_READ_PARALLELISM
        {
            return Err(BackupError::Damaged(
                "its passphrase protection costs more than a backup's does".into(),
            ));
        }
        let check = data_encoding::HEXLOWER
            .decode(parsed.check.as_bytes())
            .map_err(|_| BackupError::Damaged("the header is unreadable".into()))?;
        let key = parsed.kdf.derive(passphrase).map_err(|e| {
            BackupError::Damaged(format!("its passphrase protection is not usable: {e}"))
        })?;
        if key.open(&check, KEY_CHECK).is_err() {
            return Err(BackupError::WrongPassphrase);
        }
        let mut header = fixed.to_vec();
        header.extend_from_slice(&json);
        let mut reader = Self {
            input,
            key,
            header,
            chunk: Zeroizing::new(Vec::new()),
            at: 0,
            index: 0,
            ended: false,
        };
        reader.next_chunk()?;
        Ok(reader)
    }

    /// Open the next chunk: refused if it fails authentication as the
    /// next chunk or as the last one.
    fn next_chunk(&mut self) -> Result<(), BackupError> {
        let mut len = [0u8; 4];
        read_exact(&mut self.input, &mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_SEALED {
            return Err(BackupError::Damaged(format!(
                "chunk {} is longer than any this format writes",
                self.index
            )));
        }
        let mut sealed = vec![0u8; len];
        read_exact(&mut self.input, &mut sealed)?;
        let (opened, last) = match self
            .key
            .open(&sealed, &chunk_aad(&self.header, self.index, false))
        {
            Ok(opened) => (opened, false),
            Err(_) => match self
                .key
                .open(&sealed, &chunk_aad(&self.header, self.index, true))
            {
                Ok(opened) => (opened, true),
                Err(_) => {
                    return Err(BackupError::Damaged(format!(
                        "chunk {} fails its check (the file was changed or damaged)",
                        self.index
                    )))
                }
            },
        };
        if !last && opened.len() != CHUNK {
            return Err(BackupError::Damaged(format!(
                "chunk {} is short",
                self.index
            )));
        }
        if last {
            let mut more = [0u8; 1];
            if self.input.read(&mut more).map_err(BackupError::read)? != 0 {
                return Err(BackupError::Damaged(
                    "bytes follow the end of the backup".into(),
                ));
            }
        }
        self.chunk = opened;
        self.at = 0;
        self.index += 1;
        self.ended = last;
        Ok(())
    }

    /// Fill `out` from the content; [`BackupError::Truncated`] if the
    /// content ends first.
    pub fn read_exact(&mut self, mut out: &mut [u8]) -> Result<(), BackupError> {
        while !out.is_empty() {
            if self.at == self.chunk.len() {
                if self.ended {
                    return Err(BackupError::Damaged(
                        "the content ends in the middle of a record".into(),
                    ));
                }
                self.next_chunk()?;
                continue;
            }
            let take = (self.chunk.len() - self.at).min(out.len());
            out[..take].copy_from_slice(&self.chunk[self.at..self.at + take]);
            self.at += take;
            out = &mut out[take..];
        }
        Ok(())
    }

    /// Whether all the content has been read.
    pub fn at_end(&self) -> bool {
        self.ended && self.at == self.chunk.len()
    }
}

/// `read_exact` of the file, its end reported as [`BackupError::Truncated`].
fn read_exact(input: &mut impl Read, out: &mut [u8]) -> Result<(), BackupError> {
    input.read_exact(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Truncated,
        _ => BackupError::read(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(content: &[u8]) -> Vec<u8> {
        let mut writer = SealedWriter::new(
            Vec::new(),
            &"pass phrase".into(),
            KdfParams::fast_for_tests(),
        )
        .unwrap();
        writer.write(content).unwrap();
        writer.finish().unwrap().0
    }

    fn opened(file: &[u8], len: usize) -> Result<Vec<u8>, BackupError> {
        let mut reader = SealedReader::new(file, &"pass phrase".into())?;
        let mut out = vec![0u8; len];
        reader.read_exact(&mut out)?;
        assert!(reader.at_end());
        Ok(out)
    }

    #[test]
    fn content_round_trips_across_chunks_and_every_change_is_refused() {
        let content: Vec<u8> = (0..CHUNK * 2 + 77).map(|i| (i % 251) as u8).collect();
        let file = sealed(&content);
        assert_eq!(opened(&file, content.len()).unwrap(), content);
        assert!(!file
            .windows(64)
            .any(|w| content.windows(64).next() == Some(w)));

        let wrong = SealedReader::new(file.as_slice(), &"other".into()).err();
        assert!(matches!(wrong, Some(BackupError::WrongPassphrase)));
        // A flipped byte in the header, in the first chunk, in a later one.
        let header = 14 + u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
        for at in [20, header + 100, CHUNK + 200, file.len() - 3] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            let err = opened(&bad, content.len()).unwrap_err();
            if at > header {
                assert!(
                    matches!(err, BackupError::Damaged(_)),
                    "flip at {at}: {err:?}"
                );
            }
        }
        // Cut short at a chunk boundary: the last chunk is missing.
        let boundary = file.len() - (4 + 77 + 40);
        let cut = opened(&file[..boundary], content.len()).err();
        assert!(matches!(cut, Some(BackupError::Truncated)), "{cut:?}");
        // Bytes appended after the last chunk.
        let mut longer = file.clone();
        longer.push(0);
        assert!(opened(&longer, content.len()).is_err());
        // Not a backup at all, and a newer version.
        assert!(matches!(
            SealedReader::new(&b"hello"[..], &"x".into()).err(),
            Some(BackupError::NotABackup)
        ));
        let mut newer = file.clone();
        newer[8] = 2;
        assert!(matches!(
            SealedReader::new(newer.as_slice(), &"x".into()).err(),
            Some(BackupError::NewerVersion(2))
        ));
    }

    #[test]
    fn two_chunks_swapped_are_refused() {
        let content = vec![7u8; CHUNK * 3];
        let file = sealed(&content);
        let header = 14 + u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
        let one = 4 + MAX_SEALED;
        let mut swapped = file[..header].to_vec();
        swapped.extend_from_slice(&file[header + one..header + 2 * one]);
        swapped.extend_from_slice(&file[header..header + one]);
        swapped.extend_from_slice(&file[header + 2 * one..]);
        assert!(opened(&swapped, content.len()).is_err());
    }

    #[test]
    fn a_hostile_header_costs_nothing_before_it_is_refused() {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&VERSION.to_le_bytes());
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SealedReader::new(file.as_slice(), &"x".into()).err(),
            Some(BackupError::Damaged(_))
        ));
        // A cost far beyond what this version derives is refused unread.
        // A cost far beyond what a backup is written with is refused
        // before anything is derived (4 GiB would take seconds and all the
        // memory; 64 passes of 256 MiB, about a minute).
        for (memory, passes) in [(4_194_304, 1), (262_145, 1), (65_536, 64)] {
            let json = format!(
                r#"{{"kdf":{{"algorithm":"argon2id","memory_kib":{memory},"iterations":{passes},"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}},"chunk":1048576,"check":""}}"#
            );
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&VERSION.to_le_bytes());
            file.extend_from_slice(&(json.len() as u32).to_le_bytes());
            file.extend_from_slice(json.as_bytes());
            assert!(matches!(
                SealedReader::new(file.as_slice(), &"x".into()).err(),
                Some(BackupError::Damaged(_))
            ));
        }
    }
}
