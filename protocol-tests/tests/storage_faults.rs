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
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
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
    let ResponseKind::CreateTopics(r) = client.call(
        ApiKey::CreateTopics,
        7,
        &RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(vec![raw::new_topic(topic, 1, &[])]),
        ),
    ) else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// Produces one record; returns (error code, base offset).
fn produce(client: &mut Client, topic: &str, acks: i16, value: &[u8]) -> (i16, i64) {
    let records = raw::batch(&[value], 1000).freeze();
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let ResponseKind::Produce(r) = client.call(ApiKey::Produce, 9, &RequestKind::Produce(request))
    else {
        panic!()
    };
    let p = &r.responses[0].partition_responses[0];
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
