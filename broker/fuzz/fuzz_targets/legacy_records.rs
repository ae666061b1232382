//! A message set of magic 0/1 as an old producer sends it (Produce v0-2): converted to a
//! v2 batch if it is valid, which must then pass the produce-time validation, and convert
//! down to both old magics and up again with the same record count. Nothing may panic.
//!
//! Random bytes almost never carry a correct CRC32, so each input is also tried with
//! every message's CRC recomputed ("resealed"), which lets the fuzzer reach the message
//! fields, the compressed wrappers and the conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::protocol::{legacy_records, records};

/// offset i64 + size i32, then the message: crc u32, magic, attributes, ...
const ENTRY_OVERHEAD: usize = 12;
const MESSAGE_MIN: usize = 14;

fn resealed(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() - at >= ENTRY_OVERHEAD + MESSAGE_MIN {
        let size = i32::from_be_bytes(out[at + 8..at + 12].try_into().unwrap());
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        if size < MESSAGE_MIN || at + ENTRY_OVERHEAD + size > out.len() {
            break;
        }
        let message = at + ENTRY_OVERHEAD;
        let crc = crc32fast::hash(&out[message + 4..message + size]);
        out[message..message + 4].copy_from_slice(&crc.to_be_bytes());
        at = message + size;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    for input in [data.to_vec(), resealed(data)] {
        let _ = legacy_records::is_legacy(&input);
        let Ok(batch) = legacy_records::up_convert(&input) else {
            continue;
        };
        let count = records::validate_produced(&batch)
            .expect("an up-converted message set is a valid v2 batch")
            .header
            .record_count;
        for magic in [0, 1] {
            let down = legacy_records::down_convert(&batch, magic, 0, usize::MAX)
                .expect("an up-converted batch converts down");
            let again = legacy_records::up_convert(&down).expect("a down-converted set converts up");
            let again = records::validate_produced(&again).expect("valid again");
            assert_eq!(again.header.record_count, count, "the same records");
            // From a fetch offset inside the batch, within a limit the input picks: never
            // more than the limit, except one whole first message.
            let fetch_offset = (data.len() as i64) % (count as i64 + 1);
            let bytes_max = data.first().map_or(0, |&b| b as usize * 8);
            let part = legacy_records::down_convert(&batch, magic, fetch_offset, bytes_max)
                .expect("an up-converted batch converts down within a limit");
            assert!(part.len() <= bytes_max.max(down.len()));
        }
    }
});
