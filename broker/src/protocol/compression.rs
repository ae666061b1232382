//! The four codecs Kafka batches use, in the framings Kafka's clients write and read:
//! gzip (flate2), snappy in xerial framing (raw blocks are read too, as librdkafka may send
//! them), LZ4 frames (lz4_flex) and zstd frames.
//!
//! Inflating is bounded: a batch that inflates beyond [`INFLATED_BYTES_MAX`] is refused as
//! corrupt rather than allowed to take the broker's memory.

use std::io::{Read, Write};

use bytes::Bytes;

use super::records::{BatchError, Compression};

/// The most a single batch may inflate to.
pub const INFLATED_BYTES_MAX: u64 = 256 * 1024 * 1024;

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Inflates `body` compressed with `codec`.
pub fn decompress(codec: Compression, body: &[u8]) -> Result<Bytes, BatchError> {
    let corrupt = |_| BatchError::Corrupt("compressed records do not inflate");
    let mut out = Vec::with_capacity(body.len() * 4);
    match codec {
        Compression::None => return Ok(Bytes::copy_from_slice(body)),
        Compression::Gzip => {
            let reader = flate2::read::GzDecoder::new(body);
            read_bounded(reader, &mut out).map_err(corrupt)?;
        }
        Compression::Lz4 => {
            let reader = lz4_flex::frame::FrameDecoder::new(body);
            read_bounded(reader, &mut out).map_err(corrupt)?;
        }
        Compression::Zstd => {
            let reader = zstd::stream::read::Decoder::new(body).map_err(corrupt)?;
            read_bounded(reader, &mut out).map_err(corrupt)?;
        }
        Compression::Snappy => snappy_decompress(body, &mut out)?,
    }
    Ok(Bytes::from(out))
}

fn read_bounded(reader: impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut limited = reader.take(INFLATED_BYTES_MAX + 1);
    limited.read_to_end(out)?;
    if out.len() as u64 > INFLATED_BYTES_MAX {
        return Err(std::io::Error::other("inflated batch too large"));
    }
    Ok(())
}

fn snappy_decompress(body: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    let corrupt = BatchError::Corrupt("snappy records do not inflate");
    if body.len() < XERIAL_HEADER_BYTES || &body[..8] != XERIAL_MAGIC {
        let length = snap::raw::decompress_len(body).map_err(|_| corrupt.clone())?;
        if length as u64 > INFLATED_BYTES_MAX {
            return Err(corrupt);
        }
        out.extend_from_slice(
            &snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|_| corrupt)?,
        );
        return Ok(());
    }
    let mut rest = &body[XERIAL_HEADER_BYTES..];
    let mut decoder = snap::raw::Decoder::new();
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt);
        }
        let length = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        rest = &rest[4..];
        if length > rest.len() {
            return Err(corrupt);
        }
        let block = &rest[..length];
        let inflated = snap::raw::decompress_len(block).map_err(|_| corrupt.clone())?;
        if (out.len() + inflated) as u64 > INFLATED_BYTES_MAX {
            return Err(corrupt);
        }
        out.extend_from_slice(&decoder.decompress_vec(block).map_err(|_| corrupt.clone())?);
        rest = &rest[length..];
    }
    Ok(())
}

/// Compresses `records` with `codec`, in the framing Kafka's Java producer writes.
pub fn compress(codec: Compression, records: &[u8]) -> Result<Vec<u8>, BatchError> {
    let failed = |_| BatchError::Corrupt("records could not be compressed");
    match codec {
        Compression::None => Ok(records.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(records).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(records).map_err(failed)?;
            encoder
                .finish()
                .map_err(|_| BatchError::Corrupt("records could not be compressed"))
        }
        Compression::Zstd => zstd::bulk::compress(records, 3).map_err(failed),
        Compression::Snappy => {
            let mut out = Vec::with_capacity(records.len() / 2 + XERIAL_HEADER_BYTES);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in records.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|_| BatchError::Corrupt("records could not be compressed"))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_snappy_is_read() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"raw block")
            .unwrap();
        assert_eq!(
            &decompress(Compression::Snappy, &raw).unwrap()[..],
            b"raw block"
        );
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(decompress(
                codec,
                b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff"
            )
            .is_err());
        }
    }
}
