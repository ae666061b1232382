//! Reliability defects, each shown against the real binary: state rebuilt from a compacted
//! `__consumer_offsets`, produce refusing transactional and control batches from clients
//! that cannot send them, Fetch `max_bytes` across many full partitions, and the
//! per-operation limit on partitions created.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::{self, topic_name, Client};
use protocol_tests::Broker;
use weir::meta_store::MetaStore;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_coordinator(client: &mut Client, group_id: &str) -> i16 {
    raw::find_coordinator(client, group_id).error_code
}

/// A commit from outside any group (generation -1, as admin tools and `assign()` users
/// commit) of `offset` for each of `partitions`; all in one request, so one batch.
fn commit(client: &mut Client, group_id: &str, topic: &str, partitions: &[i32], offset: i64) {
    let ResponseKind::OffsetCommit(r) = client.call(
        ApiKey::OffsetCommit,
        8,
        &RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(offset)
                            })
                            .collect(),
                    )]),
        ),
    ) else {
        panic!("commit answer expected");
    };
    for p in &r.topics[0].partitions {
        assert_eq!(p.error_code, 0, "commit of partition {}", p.partition_index);
    }
}

/// Every committed offset of a group: (partition, offset) of `topic`, in partition order.
fn committed(client: &mut Client, group_id: &str, topic: &str) -> Vec<(i32, i64)> {
    let ResponseKind::OffsetFetch(r) = client.call(
        ApiKey::OffsetFetch,
        7,
        &RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_topics(None),
        ),
    ) else {
        panic!("offset fetch answer expected");
    };
    assert_eq!(r.error_code, 0);
    let mut offsets: Vec<(i32, i64)> = r
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    offsets.sort_unstable();
    offsets
}

fn create_topics(
    client: &mut Client,
    topics: Vec<create_topics_request::CreatableTopic>,
) -> CreateTopicsResponse {
    raw::create_topics(client, topics)
}

/// The batches of a segment file: (last offset delta, record count) of each.
fn batch_spans(segment: &Path) -> Vec<(i32, i32)> {
    let bytes = std::fs::read(segment).unwrap_or_default();
    let mut spans = Vec::new();
    let mut position = 0;
    while position + 61 <= bytes.len() {
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        let delta = i32::from_be_bytes(bytes[position + 23..position + 27].try_into().unwrap());
        let count = i32::from_be_bytes(bytes[position + 57..position + 61].try_into().unwrap());
        spans.push((delta, count));
        position += 12 + length as usize;
    }
    spans
}

#[test]
fn group_offsets_are_rebuilt_from_a_compacted_offsets_topic() {
    let mut broker = Broker::start(&[
        ("offsets.topic.num.partitions", "1"),
        ("log.roll.ms", "300"),
        ("log.cleaner.backoff.ms", "100"),
    ]);
    let mut client = Client::connect(&broker);
    let created = create_topics(&mut client, vec![raw::new_topic("t", 20, &[])]);
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(find_coordinator(&mut client, "g"), 0);
    let all: Vec<i32> = (0..20).collect();
    commit(&mut client, "g", "t", &all, 100);
    // Later commits of half the partitions roll segments (log.roll.ms) and supersede half
    // of the first batch's records, so the cleaner leaves that batch with gaps.
    for round in 1..=3 {
        std::thread::sleep(Duration::from_millis(400));
        commit(&mut client, "g", "t", &all[..10], 100 + round);
    }
    let first_segment = broker
        .data_dir
        .join("__consumer_offsets-0/00000000000000000000.log");
    wait_until(
        "the cleaner to leave a batch with gaps",
        Duration::from_secs(20),
        || {
            batch_spans(&first_segment)
                .iter()
                .any(|(delta, count)| *count < delta + 1)
        },
    );
    let expected: Vec<(i32, i64)> = (0..20)
        .map(|p| (p, if p < 10 { 103 } else { 100 }))
        .collect();
    assert_eq!(committed(&mut client, "g", "t"), expected);
    drop(client);

    // Lose the RocksDB view of the groups entirely (its writes are not synced; a power
    // cut can lose any part of it): the groups must come back from the log alone. The
    // store's metadata log, synced like Kafka's, is not a view and stays.
    assert_eq!(broker.stop(), Some(0));
    {
        let store = weir::meta_store::rocks::RocksStore::open(&broker.data_dir.join("__weir_meta"))
            .unwrap();
        let mut view: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for prefix in ["group-record/", "group-applied/"] {
            view.extend(
                store
                    .scan_prefix(prefix)
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| (k, None)),
            );
        }
        assert!(!view.is_empty(), "the groups' view was in the store");
        store.write_batch_synced(&view).unwrap();
    }
    broker.restart();
    let mut client = Client::connect(&broker);
    assert_eq!(
        find_coordinator(&mut client, "g"),
        0,
        "{}",
        broker.log_text()
    );
    assert_eq!(committed(&mut client, "g", "t"), expected);
}

fn produce(
    client: &mut Client,
    topic: &str,
    partition: i32,
    transactional_id: Option<&str>,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    let request = raw::produce_request(topic, partition, -1, records)
        .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))));
    raw::produce(client, request)
}

/// A one-record batch with these attribute bits and producer fields, CRC resealed.
fn batch_with(attributes: i16, producer_id: i64, base_sequence: i32) -> Bytes {
    let mut batch: BytesMut = raw::batch(&[b"v"], 1000);
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&0i16.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    raw::reseal(&mut batch);
    batch.freeze()
}

#[test]
fn produce_refuses_transactional_and_control_batches_from_plain_producers() {
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    let created = create_topics(&mut client, vec![raw::new_topic("p", 1, &[])]);
    assert_eq!(created.topics[0].error_code, 0);

    let refused = produce(&mut client, "p", 0, None, batch_with(TRANSACTIONAL, 9, 0));
    assert_eq!(
        refused.error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    let refused = produce(&mut client, "p", 0, None, batch_with(CONTROL, -1, -1));
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    let refused = produce(
        &mut client,
        "p",
        0,
        None,
        batch_with(CONTROL | TRANSACTIONAL, 9, 0),
    );
    assert_eq!(
        refused.error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    let refused = produce(&mut client, "p", 0, None, batch_with(0, 9, -1));
    assert_eq!(
        refused.error_code, 87,
        "an idempotent batch without a sequence"
    );

    // Two batches of one idempotent producer with a gap in one record set: Kafka allows
    // one batch per partition, and appending both would break sequence continuity.
    let mut two = BytesMut::from(&batch_with(0, 11, 0)[..]);
    two.extend_from_slice(&batch_with(0, 11, 5));
    let refused = produce(&mut client, "p", 0, None, two.freeze());
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");

    // Nothing was stored: the next good batch gets offset 0.
    let accepted = produce(&mut client, "p", 0, None, batch_with(0, -1, -1));
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 0));
}

fn fetch_all(client: &mut Client, topic: &str, partitions: i32, max_bytes: i32) -> FetchResponse {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(64 << 20)
                    })
                    .collect(),
            )]);
    let ResponseKind::Fetch(r) = client.call(ApiKey::Fetch, 12, &RequestKind::Fetch(request))
    else {
        panic!("fetch answer expected");
    };
    r
}

fn record_bytes(response: &FetchResponse) -> Vec<usize> {
    response.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .collect()
}

#[test]
fn fetch_max_bytes_holds_across_many_full_partitions() {
    const PARTITIONS: i32 = 12;
    let broker = Broker::start(&[("fetch.max.bytes", "1048576")]);
    let mut client = Client::connect(&broker);
    let created = create_topics(&mut client, vec![raw::new_topic("f", PARTITIONS, &[])]);
    assert_eq!(created.topics[0].error_code, 0);
    let value = vec![b'x'; 1000];
    let values = vec![&value[..]; 100];
    for partition in 0..PARTITIONS {
        for _ in 0..3 {
            let records = raw::batch(&values, 1000).freeze();
            assert_eq!(
                produce(&mut client, "f", partition, None, records).error_code,
                0
            );
        }
    }
    let batch_bytes = raw::batch(&values, 1000).len();

    // The request asks for everything (3.6 MB); the broker's fetch.max.bytes bounds it.
    let sizes = record_bytes(&fetch_all(&mut client, "f", PARTITIONS, i32::MAX));
    let total: usize = sizes.iter().sum();
    assert!(total <= 1 << 20, "{total} bytes in one fetch: {sizes:?}");
    assert!(
        total >= (1 << 20) - batch_bytes,
        "whole batches up to the limit: {sizes:?}"
    );
    assert_eq!(
        sizes[0],
        3 * batch_bytes,
        "partitions are served in order: {sizes:?}"
    );

    // A limit below one batch: the first partition still gets one whole batch, no more.
    let sizes = record_bytes(&fetch_all(&mut client, "f", PARTITIONS, 1000));
    assert_eq!(sizes[0], batch_bytes);
    assert!(sizes[1..].iter().all(|s| *s == 0), "{sizes:?}");
}

fn create_partitions(client: &mut Client, topic: &str, count: i32, validate_only: bool) -> i16 {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let ResponseKind::CreatePartitions(r) = client.call(
        ApiKey::CreatePartitions,
        3,
        &RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_validate_only(validate_only)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(count)
                    .with_assignments(None)]),
        ),
    ) else {
        panic!("create partitions answer expected");
    };
    r.results[0].error_code
}

#[test]
fn one_operation_cannot_create_more_than_ten_thousand_partitions() {
    const POLICY_VIOLATION: i16 = 44;
    const UNKNOWN_SERVER_ERROR: i16 = -1;
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    let codes =
        |r: CreateTopicsResponse| -> Vec<i16> { r.topics.iter().map(|t| t.error_code).collect() };

    // 1 topic record + 10,000 partition records: one over Kafka's limit.
    let r = create_topics(&mut client, vec![raw::new_topic("huge", 10_000, &[])]);
    assert_eq!(codes(r.clone()), vec![POLICY_VIOLATION]);
    assert_eq!(
        r.topics[0].error_message.as_deref(),
        Some("Unable to perform excessively large batch operation.")
    );
    let r = create_topics(&mut client, vec![raw::new_topic("max", i32::MAX, &[])]);
    assert_eq!(codes(r.clone()), vec![POLICY_VIOLATION]);
    assert_eq!(
        r.topics[0].error_message.as_deref(),
        Some("Excessively large number of partitions per request.")
    );
    // The limit counts the whole request: two halves are refused together.
    let r = create_topics(
        &mut client,
        vec![
            raw::new_topic("half-a", 5_000, &[]),
            raw::new_topic("half-b", 5_000, &[]),
        ],
    );
    assert_eq!(codes(r), vec![POLICY_VIOLATION, POLICY_VIOLATION]);
    // At the limit it is allowed (validated only, to keep the test fast).
    let mut request = CreateTopicsRequest::default()
        .with_topics(vec![raw::new_topic("fits", 9_999, &[])])
        .with_validate_only(true);
    request.timeout_ms = 5000;
    let ResponseKind::CreateTopics(r) =
        client.call(ApiKey::CreateTopics, 7, &RequestKind::CreateTopics(request))
    else {
        panic!()
    };
    assert_eq!(codes(r), vec![0]);

    let r = create_topics(&mut client, vec![raw::new_topic("grow", 1, &[])]);
    assert_eq!(codes(r), vec![0]);
    // Kafka's CreatePartitions answers the topic that overflows with UNKNOWN_SERVER_ERROR.
    assert_eq!(
        create_partitions(&mut client, "grow", 10_002, false),
        UNKNOWN_SERVER_ERROR
    );
    assert_eq!(
        create_partitions(&mut client, "grow", i32::MAX, false),
        UNKNOWN_SERVER_ERROR
    );
    assert_eq!(create_partitions(&mut client, "grow", 10_001, true), 0);
    assert_eq!(create_partitions(&mut client, "grow", 3, false), 0);

    let dirs: Vec<String> = std::fs::read_dir(&broker.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("huge") || n.starts_with("half") || n.starts_with("max-"))
        .collect();
    assert!(dirs.is_empty(), "refused topics left directories: {dirs:?}");
}
