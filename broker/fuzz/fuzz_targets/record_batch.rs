//! A produced record set: validated as a client's, and if valid, inflated, walked and
//! recompressed to every codec, each result validating again. Also the stored-batch rules
//! and the header-only checks produce runs before validation.
//!
//! Random bytes almost never carry a correct CRC32C, which stops validation at the first
//! check; so each input is also tried with every batch's CRC recomputed ("resealed"), which
//! lets the fuzzer reach the record framing, the codecs and recompression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::protocol::records::{self, Compression, OffsetDeltas};

/// Offsets in a v2 batch header: the length field, the CRC, and where the CRC starts.
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
const HEADER_BYTES: usize = 61;

/// The input with the CRC of every batch whose length fits recomputed.
fn resealed(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() - at >= HEADER_BYTES {
        let length = i32::from_be_bytes(out[at + LENGTH_AT..at + LENGTH_AT + 4].try_into().unwrap());
        let Some(total) = usize::try_from(length).ok().map(|l| l + 12) else {
            break;
        };
        if total < HEADER_BYTES || at + total > out.len() {
            break;
        }
        let crc = crc32c::crc32c(&out[at + CRC_FROM..at + total]);
        out[at + CRC_AT..at + CRC_FROM].copy_from_slice(&crc.to_be_bytes());
        at += total;
    }
    out
}

fn check(data: &[u8]) {
    let _ = records::has_transactional_batch(data);
    let _ = records::validate_stored_record_set(data);
    let Ok(headers) = records::validate_record_set(data) else {
        return;
    };
    let mut position = 0;
    for header in headers {
        let batch = &data[position..position + header.total_bytes()];
        position += header.total_bytes();
        let inflated = match records::inflate_records(batch, &header) {
            Ok(inflated) => inflated,
            Err(_) => continue,
        };
        let _ = records::walk_records(&inflated, header.record_count, OffsetDeltas::Dense, |_| Ok(()));
        let _ = records::offset_of_max_timestamp(batch, &header);
        let _ = records::find_timestamp(batch, &header, header.base_timestamp);
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            if let Ok(packed) = records::recompress(batch, &header, codec) {
                records::validate_record_set(&packed).expect("a recompressed batch validates");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&resealed(data));
});
