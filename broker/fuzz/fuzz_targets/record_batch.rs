//! A produced record set: validated as a client's, and if valid, inflated, walked and
//! recompressed to every codec, each result validating again. Also the stored-batch rules
//! and the header-only checks produce runs before validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::protocol::records::{self, Compression, OffsetDeltas};

fuzz_target!(|data: &[u8]| {
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
});
