//! `__consumer_offsets` records as read back from the log or RocksDB: a key and a value,
//! split at the first byte's count. Every decoder must refuse bad bytes, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::group::consumer::StoredConsumerGroup;
use weir::group::records::{
    decode_epoch, decode_target, ConsumerMemberValue, CurrentAssignmentValue, GroupMetadataValue,
    OffsetCommitValue, RecordKey,
};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = (split as usize).min(rest.len());
    let (key, value) = rest.split_at(split);
    let _ = OffsetCommitValue::decode(value);
    let _ = GroupMetadataValue::decode(value);
    let _ = ConsumerMemberValue::decode(value);
    let _ = CurrentAssignmentValue::decode(value);
    let _ = decode_epoch(value);
    let _ = decode_target(value);
    if let Ok(Some(key)) = RecordKey::decode(key) {
        let mut group = StoredConsumerGroup::default();
        let _ = group.add(&key, value);
    }
});
