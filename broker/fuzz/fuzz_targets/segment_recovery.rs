//! Arbitrary bytes as the only segment of a partition after a crash: opening the log must
//! recover (truncate what does not validate) without panicking, and everything it then
//! serves must be whole, CRC-valid batches with offsets that only go up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::BrokerConfig;
use weir::log::{LogOptions, PartitionLog, TopicConfig};
use weir::protocol::records;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000000.log"), data).unwrap();
    let broker = BrokerConfig::load_from(&[], &[]).unwrap();
    let options = LogOptions {
        config: TopicConfig::resolve(&broker, Default::default()),
        clean_shutdown: false,
        leader_epoch: 0,
        log_start_offset: None,
        recovery_point: None,
    };
    let Ok(log) = PartitionLog::open(dir.path(), options, None, 0) else {
        return;
    };
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let plan = match log.plan_read(offset, end, 1 << 20) {
            Ok(Some(plan)) => plan,
            _ => break,
        };
        let read = plan.read().expect("a recovered segment reads back").records;
        let headers = records::validate_stored_record_set(&read).expect("served batches validate");
        let last = headers.last().expect("a read returns a batch").last_offset();
        assert!(last >= offset, "offsets go up");
        offset = last + 1;
    }
});
