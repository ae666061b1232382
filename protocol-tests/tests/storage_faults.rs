//! Storage faults injected under the real binary: a failed fsync and an EIO on write
//! (through `faults/iofault.c`, an LD_PRELOAD shim the test compiles), and a full disk (a
//! size-limited tmpfs the test mounts). A write is acknowledged only once it is stored as
//! the flush policy demands; a storage failure takes the log directory offline and stops
//! the broker, which recovers intact; a full disk refuses writes but keeps serving reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use protocol_tests::raw::{self, topic_name, Client};
use protocol_tests::Broker;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// Builds the fault shim once per test process.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("faults/iofault.c");
        let out = std::env::temp_dir().join(format!("weir-iofault-{}.so", std::process::id()));
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("a C compiler (cc) to build the fault shim");
        assert!(status.success(), "building {} failed", source.display());
        out
    })
}

/// A broker whose file I/O fails when the test writes `<op> <path-part>` to `arm`.
fn faulty_broker(arm: &Path, overrides: &[(&str, &str)]) -> Broker {
    let shim = shim().display().to_string();
    let arm = arm.display().to_string();
    Broker::start_with(
        overrides,
        &[("LD_PRELOAD", &shim), ("WEIR_IOFAULT_FILE", &arm)],
        None,
    )
}

fn create(client: &mut Client, topic: &str) {
    raw::create_topic(client, topic, 1, &[]);
}

/// Produces one record; returns (error code, base offset).
fn produce(client: &mut Client, topic: &str, acks: i16, value: &[u8]) -> (i16, i64) {
    let records = raw::batch(&[value], 1000).freeze();
    let p = raw::produce(client, raw::produce_request(topic, 0, acks, records));
    (p.error_code, p.base_offset)
}

/// Every record of partition 0 from offset 0: (offset, value). Batch CRCs are checked.
fn read_all(client: &mut Client, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let fetch = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(4 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(4 << 20)])]);
        let ResponseKind::Fetch(r) = client.call(ApiKey::Fetch, 12, &RequestKind::Fetch(fetch))
        else {
            panic!()
        };
        let partition = &r.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let records = partition.records.clone().unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        for (base, values) in raw::parse_batches(&records) {
            for (i, value) in values.into_iter().enumerate() {
                out.push((base + i as i64, value));
            }
        }
        offset = out.last().map_or(0, |(o, _)| o + 1);
    }
}

fn value(i: usize) -> Vec<u8> {
    format!("record-{i}").into_bytes()
}

/// Arms `op` on the partition, produces once more, and checks that the directory goes
/// offline: that produce is refused, the broker stops with status 1, and after a restart
/// every acknowledged record is there, dense and intact.
fn fault_stops_the_broker_and_loses_nothing_acknowledged(op: &str, acks: i16) {
    let dir = tempfile::tempdir().unwrap();
    let arm = dir.path().join("arm");
    let topic = format!("fault-{op}");
    let mut broker = faulty_broker(&arm, &[("log.flush.interval.messages", "1")]);
    let mut client = Client::connect(&broker);
    create(&mut client, &topic);
    for i in 0..50 {
        assert_eq!(produce(&mut client, &topic, acks, &value(i)), (0, i as i64));
    }
    std::fs::write(&arm, format!("{op} {topic}-0/")).unwrap();
    let (code, _) = produce(&mut client, &topic, acks, &value(50));
    assert_eq!(
        code, KAFKA_STORAGE_ERROR,
        "the write that failed is not acknowledged"
    );
    assert_eq!(
        broker.wait_exit(Duration::from_secs(10)),
        Some(1),
        "{}",
        broker.log_text()
    );
    assert!(broker
        .log_text()
        .contains("Shutdown broker because all log dirs in"));

    std::fs::remove_file(&arm).unwrap();
    broker.restart();
    let mut client = Client::connect(&broker);
    let stored = read_all(&mut client, &topic);
    assert!(
        stored.len() >= 50,
        "acknowledged records lost: {} left",
        stored.len()
    );
    for (i, (offset, v)) in stored.iter().enumerate().take(50) {
        assert_eq!((*offset, v.clone()), (i as i64, value(i)));
    }
    let next = stored.len() as i64;
    assert_eq!(produce(&mut client, &topic, acks, b"after"), (0, next));
}

#[test]
fn a_failed_fsync_takes_the_log_directory_offline() {
    fault_stops_the_broker_and_loses_nothing_acknowledged("fsync", -1);
}

#[test]
fn an_eio_on_write_takes_the_log_directory_offline() {
    fault_stops_the_broker_and_loses_nothing_acknowledged("write", 1);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFileSystem {
    dir: tempfile::TempDir,
}

impl SmallFileSystem {
    fn mount(size: &str) -> SmallFileSystem {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (CI runs as root)"
        );
        SmallFileSystem { dir }
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_serving_reads_and_recovers() {
    let disk = SmallFileSystem::mount("16m");
    let data = disk.dir.path().join("data");
    let mut broker = Broker::start_with(&[], &[], Some(&data));
    let mut client = Client::connect(&broker);
    create(&mut client, "full");
    let big = vec![b'f'; 100_000];
    let mut acknowledged = 0usize;
    let mut refused = 0usize;
    for _ in 0..400 {
        match produce(&mut client, "full", 1, &big) {
            (0, offset) => {
                assert_eq!(offset, acknowledged as i64, "offsets stay dense");
                acknowledged += 1;
            }
            (KAFKA_STORAGE_ERROR, _) => refused += 1,
            (other, _) => panic!("unexpected error {other}"),
        }
        if refused >= 3 {
            break;
        }
    }
    assert!(
        refused >= 3 && acknowledged > 10,
        "{acknowledged} stored, {refused} refused"
    );
    assert!(broker.is_running(), "a full disk does not stop the broker");

    // Reads go on, and every acknowledged record is there and intact.
    let stored = read_all(&mut client, "full");
    assert_eq!(stored.len(), acknowledged);
    assert!(stored.iter().all(|(_, v)| *v == big));

    // Space returns: writes resume at the next offset, and a restart finds the log whole.
    disk.grow("64m");
    assert_eq!(
        produce(&mut client, "full", 1, b"after"),
        (0, acknowledged as i64)
    );
    drop(client);
    assert_eq!(broker.stop(), Some(0));
    broker.restart();
    let mut client = Client::connect(&broker);
    let stored = read_all(&mut client, "full");
    assert_eq!(stored.len(), acknowledged + 1);
    assert_eq!(stored.last().unwrap().1, b"after".to_vec());
    drop(client);
    broker.kill9();
}

/// A deterministic generator for the power cut (xorshift), seeded per run and printed so a
/// failure can be replayed with WEIR_POWER_CUT_SEED.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("WEIR_POWER_CUT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("power cut seed: WEIR_POWER_CUT_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// Simulates a power loss after `kill -9`: every segment file keeps what was last fsynced
/// (from the shim's ledger) plus an arbitrary part of what was not, some of it zeroed, as
/// pages that never reached the disk read back.
fn power_cut(data_dir: &Path, ledger: &Path, rng: &mut Rng) {
    let mut synced: std::collections::HashMap<PathBuf, u64> = std::collections::HashMap::new();
    for line in std::fs::read_to_string(ledger).unwrap_or_default().lines() {
        if let Some((size, path)) = line.split_once(' ') {
            synced.insert(PathBuf::from(path), size.parse().unwrap());
        }
    }
    for partition in std::fs::read_dir(data_dir).unwrap() {
        let partition = partition.unwrap().path();
        if !partition.is_dir() || partition.ends_with("__weir_meta") {
            continue;
        }
        for file in std::fs::read_dir(&partition).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let len = std::fs::metadata(&file).unwrap().len();
            let durable = synced.get(&file).copied().unwrap_or(0).min(len);
            let kept = durable + rng.below(len - durable + 1);
            let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            if kept > durable && rng.below(2) == 0 {
                use std::os::unix::fs::FileExt;
                let from = durable + rng.below(kept - durable);
                let zeros = vec![0u8; (kept - from).min(4096) as usize];
                handle.write_all_at(&zeros, from).unwrap();
            }
            handle.set_len(kept).unwrap();
            println!(
                "power cut: {} {len} -> {kept} (durable {durable})",
                file.display()
            );
        }
    }
}

fn init_producer_id(client: &mut Client) -> (i64, i16) {
    let ResponseKind::InitProducerId(r) = client.call(
        ApiKey::InitProducerId,
        4,
        &RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

/// Produces record `i` as sequence `i` of an idempotent producer, timestamp 1000 + i.
fn produce_sequenced(client: &mut Client, topic: &str, producer: (i64, i16), i: i32) -> (i16, i64) {
    let value = value(i as usize);
    let mut batch = raw::batch(&[&value], 1000 + i as i64);
    batch[43..51].copy_from_slice(&producer.0.to_be_bytes());
    batch[51..53].copy_from_slice(&producer.1.to_be_bytes());
    batch[53..57].copy_from_slice(&i.to_be_bytes());
    raw::reseal(&mut batch);
    let p = raw::produce(client, raw::produce_request(topic, 0, -1, batch.freeze()));
    (p.error_code, p.base_offset)
}

fn offset_for_time(client: &mut Client, topic: &str, timestamp: i64) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let ResponseKind::ListOffsets(r) = client.call(
        ApiKey::ListOffsets,
        7,
        &RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)])]),
        ),
    ) else {
        panic!()
    };
    r.topics[0].partitions[0].offset
}

/// Produces `count` idempotent records into small segments, cuts the power, restarts, and
/// checks that the log is a prefix of what was written: dense, intact, its time index and
/// producer state agreeing with it. Returns how many records survived.
fn power_loss_round(overrides: &[(&str, &str)], count: i32) -> (i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let shim = shim().display().to_string();
    let ledger_text = ledger.display().to_string();
    let mut broker = Broker::start_with(
        overrides,
        &[("LD_PRELOAD", &shim), ("WEIR_IOFAULT_LEDGER", &ledger_text)],
        None,
    );
    let mut client = Client::connect(&broker);
    raw::create_topic(
        &mut client,
        "power",
        1,
        &[("internal.segment.bytes", "16384")],
    );
    let producer = init_producer_id(&mut client);
    let half = count / 2;
    for i in 0..half {
        assert_eq!(
            produce_sequenced(&mut client, "power", producer, i),
            (0, i as i64)
        );
    }
    // A process crash first (the page cache survives it): recovery reads back segments
    // that were never fsynced, which must be fsynced before the recovery point passes them.
    std::thread::sleep(Duration::from_millis(300));
    let checkpoint = broker.data_dir.join("recovery-point-offset-checkpoint");
    let point = std::fs::read_to_string(&checkpoint).unwrap_or_default();
    assert!(
        point.contains("power 0 "),
        "no recovery point written: {point:?}"
    );
    drop(client);
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(&broker);
    for i in half..count {
        assert_eq!(
            produce_sequenced(&mut client, "power", producer, i),
            (0, i as i64)
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    broker.kill9();
    let mut rng = Rng::seeded();
    power_cut(&broker.data_dir, &ledger, &mut rng);

    broker.restart();
    let mut client = Client::connect(&broker);
    let stored = read_all(&mut client, "power");
    let survived = stored.len() as i64;
    for (i, (offset, v)) in stored.iter().enumerate() {
        assert_eq!((*offset, v), (i as i64, &value(i)), "not a prefix at {i}");
    }
    for k in (0..survived).step_by(37) {
        assert_eq!(
            offset_for_time(&mut client, "power", 1000 + k),
            k,
            "time index"
        );
    }
    if survived > 0 {
        // The last stored batch, retried, is a duplicate answered with its offset.
        let last = (survived - 1) as i32;
        assert_eq!(
            produce_sequenced(&mut client, "power", producer, last),
            (0, survived - 1)
        );
    }
    // The producer continues right after what the log holds.
    assert_eq!(
        produce_sequenced(&mut client, "power", producer, survived as i32),
        (0, survived),
        "producer state agrees with the recovered log"
    );
    let recovered_point =
        std::fs::read_to_string(broker.data_dir.join("recovery-point-offset-checkpoint"))
            .unwrap_or_default();
    println!("survived {survived} of {count}; recovery points before: {recovered_point:?}");
    drop(client);
    broker.kill9();
    (survived, count as i64)
}

#[test]
fn power_loss_keeps_every_write_acknowledged_after_its_fsync() {
    for _ in 0..3 {
        let (survived, written) = power_loss_round(
            &[
                ("log.flush.interval.messages", "1"),
                ("log.flush.offset.checkpoint.interval.ms", "100"),
            ],
            300,
        );
        assert_eq!(survived, written, "an acknowledged, fsynced write was lost");
    }
}

#[test]
fn power_loss_with_the_default_flush_policy_recovers_a_consistent_prefix() {
    for _ in 0..5 {
        let (survived, written) =
            power_loss_round(&[("log.flush.offset.checkpoint.interval.ms", "100")], 400);
        assert!(survived <= written);
    }
}
