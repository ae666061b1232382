//! Fetch, ListOffsets and Produce limits at the protocol level, with exact requests.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::Client;
use protocol_tests::Broker;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// `count` records of `value_bytes` bytes, timestamps `base_ts`, `base_ts + 1`, ...
fn batch(count: usize, value_bytes: usize, base_ts: i64) -> Bytes {
    let value = vec![b'x'; value_bytes];
    protocol_tests::raw::batch(&vec![&value[..]; count], base_ts).freeze()
}

fn produce(client: &mut Client, topic: &str, partition: i32, acks: i16, records: Bytes) -> i16 {
    let request = protocol_tests::raw::produce_request(topic, partition, acks, records);
    protocol_tests::raw::produce(client, request).error_code
}

fn create(client: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    protocol_tests::raw::create_topic(client, topic, partitions, configs);
}

fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
}

fn fetch(client: &mut Client, request: FetchRequest) -> FetchResponse {
    let ResponseKind::Fetch(r) = client.call(ApiKey::Fetch, 12, &RequestKind::Fetch(request))
    else {
        panic!()
    };
    r
}

#[test]
fn long_poll_waits_and_wakes_on_append() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, "poll", 1, &[]);
    let started = Instant::now();
    let r = fetch(&mut client, fetch_request("poll", &[(0, 0)], 400, 1));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(380),
        "empty fetch waits max_wait_ms, waited {waited:?}"
    );
    assert!(r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());

    let mut writer = Client::connect(&broker);
    let bootstrap_writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        produce(&mut writer, "poll", 0, 1, batch(3, 10, 1000))
    });
    let started = Instant::now();
    let r = fetch(&mut client, fetch_request("poll", &[(0, 0)], 10_000, 1));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the append"
    );
    assert_eq!(bootstrap_writer.join().unwrap(), 0);
    assert!(!r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
    assert_eq!(r.responses[0].partitions[0].high_watermark, 3);

    let r = fetch(&mut client, fetch_request("poll", &[(0, 99)], 0, 1));
    assert_eq!(
        r.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
}

#[test]
fn max_bytes_limits_but_one_whole_batch_always_comes() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, "sized", 1, &[]);
    for _ in 0..5 {
        assert_eq!(produce(&mut client, "sized", 0, 1, batch(10, 1000, 0)), 0);
    }
    let mut request = fetch_request("sized", &[(0, 0)], 0, 1);
    request.topics[0].partitions[0].partition_max_bytes = 100;
    let r = fetch(&mut client, request);
    let records = r.responses[0].partitions[0].records.clone().unwrap();
    let first_batch = 12 + i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        records.len(),
        first_batch,
        "exactly one whole batch above the limit"
    );
    let mut request = fetch_request("sized", &[(0, 0)], 0, 1);
    request.topics[0].partitions[0].partition_max_bytes = (first_batch * 2 + 10) as i32;
    let records = fetch(&mut client, request).responses[0].partitions[0]
        .records
        .clone()
        .unwrap();
    assert_eq!(
        records.len(),
        first_batch * 2,
        "whole batches within the limit"
    );
}

#[test]
fn incremental_fetch_sessions_send_only_news() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, "sess", 2, &[]);
    produce(&mut client, "sess", 0, 1, batch(2, 5, 0));
    produce(&mut client, "sess", 1, 1, batch(2, 5, 0));
    let mut open = fetch_request("sess", &[(0, 0), (1, 0)], 0, 0);
    open.session_id = 0;
    open.session_epoch = 0;
    let full = fetch(&mut client, open);
    assert!(full.session_id > 0, "a session was created");
    assert_eq!(full.responses[0].partitions.len(), 2);

    // The client consumed both partitions and sends its new positions; nothing is new.
    let mut next = fetch_request("sess", &[(0, 2), (1, 2)], 0, 0);
    next.session_id = full.session_id;
    next.session_epoch = 1;
    let inc = fetch(&mut client, next);
    assert_eq!(inc.session_id, full.session_id);
    let partitions: usize = inc.responses.iter().map(|t| t.partitions.len()).sum();
    assert_eq!(partitions, 0, "no news in an incremental response: {inc:?}");

    produce(&mut client, "sess", 1, 1, batch(1, 5, 0));
    let mut next = fetch_request("sess", &[], 0, 0);
    next.topics.clear();
    next.session_id = full.session_id;
    next.session_epoch = 2;
    let inc = fetch(&mut client, next);
    let got: Vec<i32> = inc
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert_eq!(got, vec![1], "only the partition with new data");

    let mut stale = fetch_request("sess", &[], 0, 0);
    stale.topics.clear();
    stale.session_id = full.session_id;
    stale.session_epoch = 2;
    assert_eq!(
        fetch(&mut client, stale).error_code,
        71,
        "INVALID_FETCH_SESSION_EPOCH"
    );
    let mut unknown = fetch_request("sess", &[], 0, 0);
    unknown.session_id = 424242;
    unknown.session_epoch = 1;
    assert_eq!(
        fetch(&mut client, unknown).error_code,
        70,
        "FETCH_SESSION_ID_NOT_FOUND"
    );

    let mut forget = fetch_request("sess", &[], 0, 0);
    forget.topics.clear();
    forget.session_id = full.session_id;
    forget.session_epoch = 3;
    forget.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic(name("sess"))
        .with_partitions(vec![0])];
    let r = fetch(&mut client, forget);
    assert_eq!(r.error_code, 0);
}

#[test]
fn list_offsets_by_timestamp_and_leader_epochs() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, "times", 1, &[]);
    // Offsets 0-4 have timestamps 1000-1004, offsets 5-9 have 2000-2004.
    produce(&mut client, "times", 0, 1, batch(5, 5, 1000));
    produce(&mut client, "times", 0, 1, batch(5, 5, 2000));
    let ask = |client: &mut Client, timestamp: i64| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("times"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])]);
        let ResponseKind::ListOffsets(r) =
            client.call(ApiKey::ListOffsets, 8, &RequestKind::ListOffsets(request))
        else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        (p.offset, p.timestamp)
    };
    assert_eq!(ask(&mut client, -2).0, 0, "earliest");
    assert_eq!(ask(&mut client, -1).0, 10, "latest");
    assert_eq!(ask(&mut client, -3), (9, 2004), "max timestamp");
    assert_eq!(ask(&mut client, 1002), (2, 1002));
    assert_eq!(ask(&mut client, 1500), (5, 2000));
    assert_eq!(ask(&mut client, 9999), (-1, -1), "nothing at or after");

    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name("times"))
            .with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_leader_epoch(0)
                    .with_current_leader_epoch(0),
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_leader_epoch(0)
                    .with_current_leader_epoch(5),
            ])]);
    let ResponseKind::OffsetForLeaderEpoch(r) = client.call(
        ApiKey::OffsetForLeaderEpoch,
        4,
        &RequestKind::OffsetForLeaderEpoch(request),
    ) else {
        panic!()
    };
    assert_eq!(
        (
            r.topics[0].partitions[0].leader_epoch,
            r.topics[0].partitions[0].end_offset
        ),
        (0, 10)
    );
    assert_eq!(
        r.topics[0].partitions[1].error_code, 75,
        "UNKNOWN_LEADER_EPOCH for a future epoch"
    );
}

#[test]
fn produce_limits_and_acks() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(
        &mut client,
        "limits",
        1,
        &[("max.message.bytes", "2000"), ("min.insync.replicas", "2")],
    );
    assert_eq!(
        produce(&mut client, "limits", 0, 1, batch(1, 3000, 0)),
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        produce(&mut client, "limits", 0, -1, batch(1, 10, 0)),
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert_eq!(
        produce(&mut client, "limits", 0, 1, batch(1, 10, 0)),
        0,
        "acks=1 ignores min.insync.replicas"
    );
    assert_eq!(
        produce(&mut client, "limits", 0, 7, batch(1, 10, 0)),
        21,
        "INVALID_REQUIRED_ACKS"
    );
    assert_eq!(
        produce(&mut client, "nope", 0, 1, batch(1, 10, 0)),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    create(
        &mut client,
        "compacted",
        1,
        &[("cleanup.policy", "compact")],
    );
    assert_eq!(
        produce(&mut client, "compacted", 0, 1, batch(1, 10, 0)),
        87,
        "INVALID_RECORD without a key"
    );
}
