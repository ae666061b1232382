//! Consumer groups against the real broker: librdkafka (rdkafka crate) members under the
//! classic and KIP-848 protocols, and bad group requests on the raw protocol.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::clients::{create_topic, producer};
use protocol_tests::raw::{topic_name, Client};
use protocol_tests::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

const FAST: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.min.session.timeout.ms", "1000"),
    ("group.consumer.heartbeat.interval.ms", "300"),
    ("group.consumer.session.timeout.ms", "3000"),
];

fn member(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

fn assigned(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every member (collecting values) until `done` holds.
fn poll_until(
    members: &[&BaseConsumer],
    values: &mut Vec<i64>,
    mut done: impl FnMut(&[&BaseConsumer], &[i64]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        for m in members {
            if let Some(Ok(message)) = m.poll(Duration::from_millis(20)) {
                let text = std::str::from_utf8(message.payload().unwrap()).unwrap();
                values.push(text.parse().unwrap());
            }
        }
        if done(members, values) {
            return;
        }
    }
    let state: Vec<BTreeSet<i32>> = members.iter().map(|m| assigned(m)).collect();
    panic!(
        "not reached: assignments {state:?}, {} values",
        values.len()
    );
}

async fn fill(bootstrap: &str, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    let producer = producer(bootstrap, &[]);
    for i in range {
        let value = i.to_string();
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(&value)
                    .partition((i % partitions as i64) as i32),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
}

fn split_leave_and_resume(protocol: &[(&str, &str)], group: &str) {
    let broker = Broker::start(FAST);
    let b = broker.bootstrap();
    let topic = format!("{group}-topic");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(create_topic(&b, &topic, 4, &[]));

    let a = member(&b, group, &topic, protocol);
    let second = member(&b, group, &topic, protocol);
    let mut values = Vec::new();
    // Records arrive once the split is settled, so each is read exactly once.
    poll_until(&[&a, &second], &mut values, |m, _| {
        assigned(m[0]).len() == 2 && assigned(m[1]).len() == 2
    });
    assert!(assigned(&a).is_disjoint(&assigned(&second)));
    runtime.block_on(fill(&b, &topic, 4, 0..200));
    poll_until(&[&a, &second], &mut values, |_, v| v.len() >= 200);
    a.commit_consumer_state(CommitMode::Sync).unwrap();
    second.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(second); // closes: leaves the group

    poll_until(&[&a], &mut values, |m, _| assigned(m[0]).len() == 4);
    runtime.block_on(fill(&b, &topic, 4, 200..300));
    poll_until(&[&a], &mut values, |_, v| v.len() >= 300);
    let mut sorted = values.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..300).collect::<Vec<_>>(),
        "nothing lost, nothing twice"
    );
}

#[test]
fn classic_members_split_and_one_leaves() {
    split_leave_and_resume(&[("session.timeout.ms", "6000")], "rd-classic");
}

#[test]
fn kip848_members_split_and_one_leaves() {
    split_leave_and_resume(&[("group.protocol", "consumer")], "rd-848");
}

// ---- Bad input on the raw protocol ----

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn join(group_id: &str, member_id: &str, protocol_type: &str, metadata: Bytes) -> RequestKind {
    RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(group(group_id))
            .with_member_id(s(member_id))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s(protocol_type))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(metadata)]),
    )
}

fn join_response(client: &mut Client, body: &RequestKind) -> JoinGroupResponse {
    match client.call(ApiKey::JoinGroup, 9, body) {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// Joins a single-member group through the MEMBER_ID_REQUIRED handshake and syncs it.
fn settle_one(client: &mut Client, group_id: &str) -> (String, i32) {
    let first = join_response(
        client,
        &join(group_id, "", "consumer", Bytes::from_static(b"m")),
    );
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let joined = join_response(
        client,
        &join(
            group_id,
            &first.member_id,
            "consumer",
            Bytes::from_static(b"m"),
        ),
    );
    assert_eq!(joined.error_code, 0);
    assert_eq!(
        sync(client, group_id, joined.generation_id, &joined.member_id),
        0
    );
    (joined.member_id.to_string(), joined.generation_id)
}

fn find_coordinator(client: &mut Client, group_id: &str) -> find_coordinator_response::Coordinator {
    protocol_tests::raw::find_coordinator(client, group_id)
}

/// A SyncGroup v5 without assignments (protocol type and name given, as v5 requires);
/// returns its error code.
fn sync(client: &mut Client, group_id: &str, generation: i32, member_id: &str) -> i16 {
    let ResponseKind::SyncGroup(sync) = client.call(
        ApiKey::SyncGroup,
        5,
        &RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(group(group_id))
                .with_generation_id(generation)
                .with_member_id(s(member_id))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range"))),
        ),
    ) else {
        panic!("sync answer expected");
    };
    sync.error_code
}

fn heartbeat(client: &mut Client, group_id: &str, member_id: &str, generation: i32) -> i16 {
    let ResponseKind::Heartbeat(r) = client.call(
        ApiKey::Heartbeat,
        4,
        &RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group(group_id))
                .with_generation_id(generation)
                .with_member_id(s(member_id)),
        ),
    ) else {
        panic!("heartbeat answer expected");
    };
    r.error_code
}

fn commit(
    client: &mut Client,
    group_id: &str,
    generation: i32,
    topic: &str,
    metadata_bytes: usize,
) -> i16 {
    let ResponseKind::OffsetCommit(r) = client.call(
        ApiKey::OffsetCommit,
        9,
        &commit_request(group_id, generation, topic, 0, metadata_bytes),
    ) else {
        panic!("commit answer expected");
    };
    r.topics[0].partitions[0].error_code
}

/// An OffsetCommit of `version` to one partition.
fn commit_v(
    client: &mut Client,
    version: i16,
    group_id: &str,
    generation: i32,
    topic: &str,
    partition: i32,
) -> i16 {
    let ResponseKind::OffsetCommit(r) = client.call(
        ApiKey::OffsetCommit,
        version,
        &commit_request(group_id, generation, topic, partition, 1),
    ) else {
        panic!("commit answer expected");
    };
    r.topics[0].partitions[0].error_code
}

fn commit_request(
    group_id: &str,
    generation: i32,
    topic: &str,
    partition: i32,
    metadata_bytes: usize,
) -> RequestKind {
    RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(group(group_id))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(5)
                            .with_committed_metadata(Some(s(&"x".repeat(metadata_bytes)))),
                    ]),
            ]),
    )
}

#[test]
fn bad_group_requests_get_kafka_errors_and_disturb_nothing() {
    let broker = Broker::start(FAST);
    let mut client = Client::connect(&broker);
    // Clients find the coordinator first; that creates __consumer_offsets.
    let found = find_coordinator(&mut client, "bad-g");
    assert_eq!(found.error_code, 0);
    assert_eq!(found.port, broker.port as i32);
    let (member_id, generation) = settle_one(&mut client, "bad-g");

    // A member with another protocol type, or none at all.
    let other_type = join_response(
        &mut client,
        &join("bad-g", "", "connect", Bytes::from_static(b"m")),
    );
    assert_eq!(other_type.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    let mut no_protocols = join("bad-g2", "", "consumer", Bytes::new());
    if let RequestKind::JoinGroup(j) = &mut no_protocols {
        j.protocols.clear();
    }
    assert_eq!(join_response(&mut client, &no_protocols).error_code, 23);
    let mut short_session = join("bad-g2", "", "consumer", Bytes::new());
    if let RequestKind::JoinGroup(j) = &mut short_session {
        j.session_timeout_ms = 1;
    }
    assert_eq!(
        join_response(&mut client, &short_session).error_code,
        26,
        "INVALID_SESSION_TIMEOUT"
    );
    assert_eq!(
        join_response(&mut client, &join("", "", "consumer", Bytes::new())).error_code,
        24,
        "INVALID_GROUP_ID"
    );

    // SyncGroup from a stranger; heartbeats for groups and members that do not exist.
    assert_eq!(
        sync(&mut client, "bad-g", generation, "stranger"),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(heartbeat(&mut client, "no-such-group", "m", 1), 25);
    assert_eq!(
        heartbeat(&mut client, "bad-g", &member_id, generation + 3),
        22,
        "ILLEGAL_GENERATION"
    );

    // Commits: a generation for a group that does not exist, an unknown topic, metadata
    // beyond offset.metadata.max.bytes.
    assert_eq!(
        commit(&mut client, "no-such-group", 3, "bad-topic", 1),
        3,
        "a topic that does not exist is checked before the group"
    );
    assert_eq!(commit(&mut client, "simple-g", -1, "no-such-topic", 1), 3);
    let ResponseKind::CreateTopics(_) = client.call(
        ApiKey::CreateTopics,
        7,
        &RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(vec![protocol_tests::raw::new_topic(
                "bad-topic",
                1,
                &[],
            )]),
        ),
    ) else {
        panic!("create answer expected");
    };
    assert_eq!(
        commit(&mut client, "simple-g", -1, "bad-topic", 5000),
        12,
        "OFFSET_METADATA_TOO_LARGE"
    );
    assert_eq!(commit(&mut client, "simple-g", -1, "bad-topic", 10), 0);
    assert_eq!(
        commit(&mut client, "no-such-group", 3, "bad-topic", 1),
        69,
        "GROUP_ID_NOT_FOUND: a generation for a group that does not exist (v9+)"
    );
    assert_eq!(
        commit_v(&mut client, 8, "no-such-group", 3, "bad-topic", 0),
        22,
        "ILLEGAL_GENERATION before v9"
    );
    assert_eq!(
        commit_v(&mut client, 9, "no-such-group", -1, "bad-topic", 7),
        3,
        "a partition that does not exist fails before the group"
    );

    // A member whose metadata is too large to be stored: its group fails the sync with
    // UNKNOWN_SERVER_ERROR, as Kafka; other groups carry on.
    let huge = Bytes::from(vec![7u8; 2 << 20]);
    let mut big_client = Client::connect(&broker);
    let first = join_response(
        &mut big_client,
        &join("huge-g", "", "consumer", huge.clone()),
    );
    let joined = join_response(
        &mut big_client,
        &join("huge-g", &first.member_id, "consumer", huge),
    );
    assert_eq!(joined.error_code, 0);
    assert_eq!(
        sync(
            &mut big_client,
            "huge-g",
            joined.generation_id,
            &joined.member_id
        ),
        -1,
        "UNKNOWN_SERVER_ERROR"
    );

    // KIP-848: unknown members, fenced epochs, bad regular expressions.
    let cg = |member: &str, epoch: i32, regex: Option<&str>| {
        RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group("bad-cg"))
                .with_member_id(s(member))
                .with_member_epoch(epoch)
                .with_rebalance_timeout_ms(5000)
                .with_subscribed_topic_names(regex.is_none().then(|| vec![topic_name("bad-topic")]))
                .with_subscribed_topic_regex(regex.map(s)),
        )
    };
    let mut code_of =
        |body: RequestKind| match client.call(ApiKey::ConsumerGroupHeartbeat, 1, &body) {
            ResponseKind::ConsumerGroupHeartbeat(r) => r.error_code,
            other => panic!("unexpected {other:?}"),
        };
    assert_eq!(
        code_of(cg("m1", 0, Some("("))),
        128,
        "INVALID_REGULAR_EXPRESSION"
    );
    assert_eq!(code_of(cg("m1", 0, None)), 0);
    assert_eq!(code_of(cg("m1", 7, None)), 110, "FENCED_MEMBER_EPOCH");
    assert_eq!(code_of(cg("m2", 4, None)), 25, "UNKNOWN_MEMBER_ID");

    // A KIP-848 member's commit with a stale epoch: a topic that does not exist is
    // UNKNOWN_TOPIC_OR_PARTITION, checked before the epoch (as Kafka 4.1's request handler
    // does); an existing topic gets STALE_MEMBER_EPOCH.
    let commit_as = |client: &mut Client, topics: &[&str]| -> Vec<i16> {
        let topics = topics
            .iter()
            .map(|t| {
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1),
                    ])
            })
            .collect();
        let ResponseKind::OffsetCommit(r) = client.call(
            ApiKey::OffsetCommit,
            9,
            &RequestKind::OffsetCommit(
                OffsetCommitRequest::default()
                    .with_group_id(group("bad-cg"))
                    .with_member_id(s("m1"))
                    .with_generation_id_or_member_epoch(99)
                    .with_topics(topics),
            ),
        ) else {
            panic!("commit answer expected");
        };
        r.topics
            .iter()
            .map(|t| t.partitions[0].error_code)
            .collect()
    };
    assert_eq!(commit_as(&mut client, &["no-such-topic"]), vec![3]);
    assert_eq!(
        commit_as(&mut client, &["bad-topic", "no-such-topic"]),
        vec![113, 3],
        "STALE_MEMBER_EPOCH for the existing topic only"
    );

    // The settled group was not disturbed by any of it.
    assert_eq!(heartbeat(&mut client, "bad-g", &member_id, generation), 0);

    // OffsetDelete while a member with an unreadable subscription is in: Kafka treats it
    // as subscribed to everything.
    let ResponseKind::OffsetDelete(deleted) = client.call(
        ApiKey::OffsetDelete,
        0,
        &RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group("bad-g"))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic_name("bad-topic"))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]),
        ),
    ) else {
        panic!("offset delete answer expected");
    };
    assert_eq!(deleted.error_code, 0);
    assert_eq!(
        deleted.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );

    // LeaveGroup v5 batch: the member leaves, a stranger is unknown.
    let ResponseKind::LeaveGroup(left) = client.call(
        ApiKey::LeaveGroup,
        5,
        &RequestKind::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(group("bad-g"))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s(&member_id)),
                    leave_group_request::MemberIdentity::default().with_member_id(s("stranger")),
                ]),
        ),
    ) else {
        panic!("leave answer expected");
    };
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, 25]);
    assert_eq!(heartbeat(&mut client, "bad-g", &member_id, generation), 25);
}

#[test]
fn group_max_size_is_enforced() {
    let broker = Broker::start(&[
        ("group.max.size", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
    ]);
    let mut client = Client::connect(&broker);
    find_coordinator(&mut client, "small");
    settle_one(&mut client, "small");
    let refused = join_response(
        &mut client,
        &join("small", "", "consumer", Bytes::from_static(b"m")),
    );
    assert_eq!(refused.error_code, 81, "GROUP_MAX_SIZE_REACHED");
}

/// Group configs (resource type GROUP) apply to a KIP-848 group's members: the heartbeat
/// interval a member is told and the session after which a silent member is removed. They
/// survive a restart.
#[test]
fn group_configs_set_a_consumer_groups_heartbeat_and_session() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let mut broker = Broker::start(&[
        ("group.consumer.min.session.timeout.ms", "1000"),
        ("group.consumer.min.heartbeat.interval.ms", "100"),
    ]);
    let mut client = Client::connect(&broker);
    protocol_tests::raw::create_topic(&mut client, "gc-topic", 2, &[]);
    let alter = |client: &mut Client, key: &str, value: &str| -> i16 {
        let ResponseKind::IncrementalAlterConfigs(r) = client.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &RequestKind::IncrementalAlterConfigs(
                IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(32)
                        .with_resource_name(s("gc-group"))
                        .with_configs(vec![AlterableConfig::default()
                            .with_name(s(key))
                            .with_config_operation(0)
                            .with_value(Some(s(value)))]),
                ]),
            ),
        ) else {
            panic!("IncrementalAlterConfigs answer expected");
        };
        r.responses[0].error_code
    };
    assert_eq!(
        alter(&mut client, "consumer.session.timeout.ms", "500"),
        40,
        "INVALID_CONFIG below the minimum"
    );
    assert_eq!(
        alter(&mut client, "consumer.heartbeat.interval.ms", "700"),
        0
    );
    assert_eq!(alter(&mut client, "consumer.session.timeout.ms", "2000"), 0);

    let heartbeat = |client: &mut Client| -> ConsumerGroupHeartbeatResponse {
        let ResponseKind::ConsumerGroupHeartbeat(r) = client.call(
            ApiKey::ConsumerGroupHeartbeat,
            1,
            &RequestKind::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(group("gc-group"))
                    .with_member_id(s("gc-member"))
                    .with_member_epoch(0)
                    .with_rebalance_timeout_ms(5000)
                    .with_subscribed_topic_names(Some(vec![topic_name("gc-topic")])),
            ),
        ) else {
            panic!("ConsumerGroupHeartbeat answer expected");
        };
        r
    };
    assert_eq!(
        protocol_tests::raw::find_coordinator(&mut client, "gc-group").error_code,
        0
    );
    let joined = heartbeat(&mut client);
    assert_eq!(joined.error_code, 0);
    assert_eq!(
        joined.heartbeat_interval_ms, 700,
        "the group's heartbeat interval"
    );

    // Silent for longer than the group's 2 s session (the broker's is 45 s): removed.
    let members = |client: &mut Client| -> usize {
        let ResponseKind::ConsumerGroupDescribe(r) = client.call(
            ApiKey::ConsumerGroupDescribe,
            0,
            &RequestKind::ConsumerGroupDescribe(
                ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("gc-group")]),
            ),
        ) else {
            panic!("ConsumerGroupDescribe answer expected");
        };
        r.groups[0].members.len()
    };
    assert_eq!(members(&mut client), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while members(&mut client) > 0 {
        assert!(
            Instant::now() < deadline,
            "the silent member was not removed after the group's session"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    broker.stop();
    broker.restart();
    let mut client = Client::connect(&broker);
    let ResponseKind::DescribeConfigs(described) = client.call(
        ApiKey::DescribeConfigs,
        4,
        &RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(s("gc-group"))
                .with_configuration_keys(Some(vec![s("consumer.session.timeout.ms")])),
        ])),
    ) else {
        panic!("DescribeConfigs answer expected");
    };
    let entry = &described.results[0].configs[0];
    assert_eq!(
        entry.value.as_deref(),
        Some("2000"),
        "kept across a restart"
    );
    assert_eq!(entry.config_source, 8, "DYNAMIC_GROUP_CONFIG");
}
