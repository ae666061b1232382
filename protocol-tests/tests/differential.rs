//! The same request sequences, valid and invalid, sent to weir and to Apache Kafka itself
//! (the jars of `scripts/kafka/pom.xml`, started by `scripts/kafka-as-weir`); the responses
//! must agree field by field once what legitimately differs is blanked: cluster and node
//! ids, ports, topic ids, timestamps, throttle times and the wording of error messages.
//! Where Kafka's behaviour is not copied on purpose, the README says so and why.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::{self, topic_name, Client};
use protocol_tests::Broker;
use uuid::Uuid;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Blanks what legitimately differs between two brokers, then renders the response.
fn normalized(mut response: ResponseKind) -> String {
    match &mut response {
        ResponseKind::CreateTopics(r) => {
            r.throttle_time_ms = 0;
            for t in &mut r.topics {
                t.topic_id = Uuid::nil();
                t.error_message = t.error_message.as_ref().map(|_| s("<message>"));
                // Both list every topic config; their order and the broker-level
                // defaults behind them are compared by the config tests instead.
                t.configs = None;
            }
        }
        ResponseKind::Metadata(r) => {
            r.throttle_time_ms = 0;
            r.cluster_id = None;
            for b in &mut r.brokers {
                b.port = 0;
            }
            for t in &mut r.topics {
                t.topic_id = Uuid::nil();
                // Kafka lists partitions in hash order; the order carries no meaning.
                t.partitions.sort_by_key(|p| p.partition_index);
            }
        }
        ResponseKind::Produce(r) => {
            r.throttle_time_ms = 0;
            for t in &mut r.responses {
                for p in &mut t.partition_responses {
                    // Whether there is a message, and whether a log append time is given,
                    // a client can see; the wording and the clock it cannot.
                    p.error_message = p.error_message.as_ref().map(|_| s("<message>"));
                    if p.log_append_time_ms >= 0 {
                        p.log_append_time_ms = 0;
                    }
                    for e in &mut p.record_errors {
                        e.batch_index_error_message =
                            e.batch_index_error_message.as_ref().map(|_| s("<message>"));
                    }
                }
            }
        }
        ResponseKind::Fetch(r) => {
            r.throttle_time_ms = 0;
            r.session_id = 0;
            for t in &mut r.responses {
                t.topic_id = Uuid::nil();
            }
        }
        ResponseKind::ListOffsets(r) => r.throttle_time_ms = 0,
        ResponseKind::OffsetCommit(r) => r.throttle_time_ms = 0,
        ResponseKind::OffsetFetch(r) => r.throttle_time_ms = 0,
        ResponseKind::DeleteRecords(r) => r.throttle_time_ms = 0,
        ResponseKind::DescribeConfigs(r) => {
            r.throttle_time_ms = 0;
            for res in &mut r.results {
                res.error_message = res.error_message.as_ref().map(|_| s("<message>"));
            }
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            r.throttle_time_ms = 0;
            for res in &mut r.responses {
                res.error_message = res.error_message.as_ref().map(|_| s("<message>"));
            }
        }
        ResponseKind::Heartbeat(r) => r.throttle_time_ms = 0,
        ResponseKind::DescribeGroups(r) => {
            r.throttle_time_ms = 0;
            // Kafka answers group by group in coordinator order; clients match by id.
            r.groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        }
        ResponseKind::OffsetDelete(r) => r.throttle_time_ms = 0,
        ResponseKind::FindCoordinator(r) => {
            r.throttle_time_ms = 0;
            r.port = 0;
            r.error_message = r.error_message.as_ref().map(|_| s("<message>"));
            for c in &mut r.coordinators {
                c.port = 0;
                c.error_message = c.error_message.as_ref().map(|_| s("<message>"));
            }
        }
        ResponseKind::DescribeCluster(r) => {
            r.throttle_time_ms = 0;
            r.cluster_id = s("<cluster>");
            for b in &mut r.brokers {
                b.port = 0;
            }
        }
        ResponseKind::LeaveGroup(r) => r.throttle_time_ms = 0,
        ResponseKind::ListGroups(r) => {
            r.throttle_time_ms = 0;
            r.groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        }
        ResponseKind::CreatePartitions(r) => {
            r.throttle_time_ms = 0;
            for t in &mut r.results {
                t.error_message = t.error_message.as_ref().map(|_| s("<message>"));
            }
        }
        ResponseKind::DeleteTopics(r) => {
            r.throttle_time_ms = 0;
            for t in &mut r.responses {
                t.topic_id = Uuid::nil();
                t.error_message = t.error_message.as_ref().map(|_| s("<message>"));
            }
        }
        ResponseKind::InitProducerId(r) => r.throttle_time_ms = 0,
        ResponseKind::JoinGroup(r) => r.throttle_time_ms = 0,
        ResponseKind::SyncGroup(r) => r.throttle_time_ms = 0,
        ResponseKind::DeleteGroups(r) => r.throttle_time_ms = 0,
        _ => {}
    }
    format!("{response:#?}")
}

/// One step of a scenario: a request at a version.
struct Step {
    what: &'static str,
    key: ApiKey,
    version: i16,
    body: RequestKind,
}

fn step(what: &'static str, key: ApiKey, version: i16, body: RequestKind) -> Step {
    Step {
        what,
        key,
        version,
        body,
    }
}

fn create(name: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) -> RequestKind {
    RequestKind::CreateTopics(
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(partitions)
                .with_replication_factor(replication)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(s(k))
                                .with_value(Some(s(v)))
                        })
                        .collect(),
                )]),
    )
}

fn metadata(topics: &[&str]) -> RequestKind {
    RequestKind::Metadata(
        MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect(),
            )),
    )
}

fn produce(topic: &str, partition: i32, records: Bytes) -> RequestKind {
    RequestKind::Produce(raw::produce_request(topic, partition, -1, records))
}

fn fetch(topic: &str, partition: i32, offset: i64) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]),
    )
}

fn list_offsets(topic: &str, partition: i32, timestamp: i64) -> RequestKind {
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]),
    )
}

fn commit(group: &str, generation: i32, topic: &str, partition: i32) -> RequestKind {
    RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(2)])]),
    )
}

fn describe_topic_configs(topic: &str) -> RequestKind {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configuration_keys(Some(vec![s("cleanup.policy")])),
    ]))
}

fn alter_topic_config(topic: &str, key: &str, value: &str) -> RequestKind {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default().with_resources(
        vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s(key))
                .with_config_operation(0)
                .with_value(Some(s(value)))])],
    ))
}

fn delete_records(topic: &str, partition: i32, offset: i64) -> RequestKind {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    RequestKind::DeleteRecords(
        DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])]),
    )
}

fn scenario() -> Vec<Step> {
    let three = raw::batch(&[b"a", b"b", b"c"], 1_700_000_000_000).freeze();
    let mut corrupt = raw::batch(&[b"x"], 1_700_000_000_000);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let big = raw::value_batch(3000);
    vec![
        // Topics: valid, duplicate, bad names, bad configs, bad counts.
        step(
            "create",
            ApiKey::CreateTopics,
            7,
            create("d-topic", 2, 1, &[]),
        ),
        step(
            "create again",
            ApiKey::CreateTopics,
            7,
            create("d-topic", 2, 1, &[]),
        ),
        step(
            "bad name",
            ApiKey::CreateTopics,
            7,
            create("bad/name", 1, 1, &[]),
        ),
        step("dot name", ApiKey::CreateTopics, 7, create("..", 1, 1, &[])),
        step(
            "bad config value",
            ApiKey::CreateTopics,
            7,
            create("d-bad-config", 1, 1, &[("cleanup.policy", "sometimes")]),
        ),
        step(
            "unknown config",
            ApiKey::CreateTopics,
            7,
            create("d-unknown-config", 1, 1, &[("no.such.config", "1")]),
        ),
        step(
            "zero partitions",
            ApiKey::CreateTopics,
            7,
            create("d-zero", 0, 1, &[]),
        ),
        step(
            "replication 3 on one broker",
            ApiKey::CreateTopics,
            7,
            create("d-rf3", 1, 3, &[]),
        ),
        step(
            "small max.message.bytes",
            ApiKey::CreateTopics,
            7,
            create("d-small", 1, 1, &[("max.message.bytes", "1000")]),
        ),
        // Metadata.
        step("metadata", ApiKey::Metadata, 12, metadata(&["d-topic"])),
        step(
            "metadata unknown",
            ApiKey::Metadata,
            12,
            metadata(&["d-missing"]),
        ),
        // Produce: good, unknown topic, bad partition, corrupt CRC, too large.
        step(
            "produce",
            ApiKey::Produce,
            9,
            produce("d-topic", 0, three.clone()),
        ),
        step(
            "produce again",
            ApiKey::Produce,
            9,
            produce("d-topic", 0, three),
        ),
        step(
            "produce unknown topic",
            ApiKey::Produce,
            9,
            produce("d-missing", 0, raw::batch(&[b"x"], 1).freeze()),
        ),
        step(
            "produce bad partition",
            ApiKey::Produce,
            9,
            produce("d-topic", 7, raw::batch(&[b"x"], 1).freeze()),
        ),
        step(
            "produce corrupt",
            ApiKey::Produce,
            9,
            produce("d-topic", 1, corrupt.freeze()),
        ),
        step(
            "produce a gzip batch whose record count lies",
            ApiKey::Produce,
            9,
            produce("d-topic", 1, lying_gzip_batch()),
        ),
        step(
            "produce a plain batch whose record count lies",
            ApiKey::Produce,
            9,
            produce("d-topic", 1, lying_plain_batch()),
        ),
        step(
            "produce too large",
            ApiKey::Produce,
            9,
            produce("d-small", 0, big),
        ),
        // Fetch and offsets.
        step("fetch", ApiKey::Fetch, 12, fetch("d-topic", 0, 0)),
        step(
            "fetch from the middle",
            ApiKey::Fetch,
            12,
            fetch("d-topic", 0, 4),
        ),
        step(
            "fetch out of range",
            ApiKey::Fetch,
            12,
            fetch("d-topic", 0, 99),
        ),
        step(
            "fetch unknown topic",
            ApiKey::Fetch,
            12,
            fetch("d-missing", 0, 0),
        ),
        step(
            "earliest",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 0, -2),
        ),
        step(
            "latest",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 0, -1),
        ),
        step(
            "by time",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 0, 1_700_000_000_001),
        ),
        step(
            "after the last time",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 0, 1_800_000_000_000),
        ),
        step(
            "offsets of a bad partition",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 9, -1),
        ),
        step(
            "delete records",
            ApiKey::DeleteRecords,
            2,
            delete_records("d-topic", 0, 2),
        ),
        step(
            "delete records beyond the end",
            ApiKey::DeleteRecords,
            2,
            delete_records("d-topic", 0, 99),
        ),
        step(
            "earliest after delete",
            ApiKey::ListOffsets,
            7,
            list_offsets("d-topic", 0, -2),
        ),
        step(
            "fetch below the start",
            ApiKey::Fetch,
            12,
            fetch("d-topic", 0, 0),
        ),
        // Configs.
        step(
            "describe configs",
            ApiKey::DescribeConfigs,
            4,
            describe_topic_configs("d-topic"),
        ),
        step(
            "describe configs unknown",
            ApiKey::DescribeConfigs,
            4,
            describe_topic_configs("d-missing"),
        ),
        step(
            "alter bad value",
            ApiKey::IncrementalAlterConfigs,
            1,
            alter_topic_config("d-topic", "cleanup.policy", "sometimes"),
        ),
        step(
            "alter unknown key",
            ApiKey::IncrementalAlterConfigs,
            1,
            alter_topic_config("d-topic", "no.such.config", "1"),
        ),
        step(
            "alter unknown topic",
            ApiKey::IncrementalAlterConfigs,
            1,
            alter_topic_config("d-missing", "retention.ms", "1000"),
        ),
        step(
            "alter",
            ApiKey::IncrementalAlterConfigs,
            1,
            alter_topic_config("d-topic", "cleanup.policy", "compact"),
        ),
        step(
            "describe altered",
            ApiKey::DescribeConfigs,
            4,
            describe_topic_configs("d-topic"),
        ),
        // Groups without members: simple commits, generations of groups that do not exist.
        step(
            "simple commit",
            ApiKey::OffsetCommit,
            9,
            commit("d-group", -1, "d-topic", 0),
        ),
        step(
            "commit to a missing group, v9",
            ApiKey::OffsetCommit,
            9,
            commit("d-missing-group", 3, "d-topic", 0),
        ),
        step(
            "commit to a missing group, v8",
            ApiKey::OffsetCommit,
            8,
            commit("d-missing-group", 3, "d-topic", 0),
        ),
        step(
            "commit of a missing partition",
            ApiKey::OffsetCommit,
            9,
            commit("d-group", -1, "d-topic", 9),
        ),
        step(
            "commit of a missing topic",
            ApiKey::OffsetCommit,
            9,
            commit("d-group", -1, "d-missing", 0),
        ),
        step(
            "heartbeat to a missing group",
            ApiKey::Heartbeat,
            4,
            RequestKind::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(GroupId(s("d-missing-group")))
                    .with_member_id(s("m"))
                    .with_generation_id(1),
            ),
        ),
        step(
            "delete a missing group",
            ApiKey::DeleteGroups,
            2,
            RequestKind::DeleteGroups(
                DeleteGroupsRequest::default()
                    .with_groups_names(vec![GroupId(s("d-missing-group"))]),
            ),
        ),
        step(
            "join with a 1 ms session",
            ApiKey::JoinGroup,
            9,
            join_group("d-join", 1),
        ),
        step(
            "join with an empty group id",
            ApiKey::JoinGroup,
            9,
            join_group("", 10_000),
        ),
        step(
            "sync from a stranger",
            ApiKey::SyncGroup,
            5,
            RequestKind::SyncGroup(
                SyncGroupRequest::default()
                    .with_group_id(GroupId(s("d-missing-group")))
                    .with_generation_id(1)
                    .with_member_id(s("stranger")),
            ),
        ),
        step(
            "sync from a stranger with the protocol named",
            ApiKey::SyncGroup,
            5,
            RequestKind::SyncGroup(
                SyncGroupRequest::default()
                    .with_group_id(GroupId(s("d-missing-group")))
                    .with_generation_id(1)
                    .with_member_id(s("stranger"))
                    .with_protocol_type(Some(s("consumer")))
                    .with_protocol_name(Some(s("range"))),
            ),
        ),
        step(
            "leave as a stranger",
            ApiKey::LeaveGroup,
            5,
            RequestKind::LeaveGroup(
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s("d-missing-group")))
                    .with_members(vec![
                        kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                            .with_member_id(s("stranger")),
                    ]),
            ),
        ),
        step(
            "list empty groups",
            ApiKey::ListGroups,
            5,
            RequestKind::ListGroups(
                ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
            ),
        ),
        step(
            "find a group's coordinator",
            ApiKey::FindCoordinator,
            4,
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![s("d-group"), s("")]),
            ),
        ),
        step(
            "find a transaction coordinator",
            ApiKey::FindCoordinator,
            3,
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_key(s("d-txn")),
            ),
        ),
        step(
            "describe the cluster",
            ApiKey::DescribeCluster,
            1,
            RequestKind::DescribeCluster(
                DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            ),
        ),
        step(
            "fetch offsets of a simple group and a missing one",
            ApiKey::OffsetFetch,
            8,
            offset_fetch(&["d-group", "d-missing-group"]),
        ),
        step(
            "describe a simple group and a missing one",
            ApiKey::DescribeGroups,
            5,
            RequestKind::DescribeGroups(
                DescribeGroupsRequest::default()
                    .with_groups(vec![GroupId(s("d-group")), GroupId(s("d-missing-group"))]),
            ),
        ),
        step(
            "delete offsets of a missing group",
            ApiKey::OffsetDelete,
            0,
            offset_delete("d-missing-group", "d-topic"),
        ),
        step(
            "delete offsets of a simple group",
            ApiKey::OffsetDelete,
            0,
            offset_delete("d-group", "d-topic"),
        ),
        step(
            "delete the empty simple group",
            ApiKey::DeleteGroups,
            2,
            RequestKind::DeleteGroups(
                DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("d-group"))]),
            ),
        ),
        // Partitions and topic deletion.
        step(
            "grow to 4",
            ApiKey::CreatePartitions,
            3,
            create_partitions("d-topic", 4),
        ),
        step(
            "shrink to 1",
            ApiKey::CreatePartitions,
            3,
            create_partitions("d-topic", 1),
        ),
        step(
            "same count",
            ApiKey::CreatePartitions,
            3,
            create_partitions("d-topic", 4),
        ),
        step(
            "grow a missing topic",
            ApiKey::CreatePartitions,
            3,
            create_partitions("d-missing", 4),
        ),
        step(
            "delete a missing topic",
            ApiKey::DeleteTopics,
            6,
            delete_topic("d-missing"),
        ),
        step(
            "delete a topic",
            ApiKey::DeleteTopics,
            6,
            delete_topic("d-small"),
        ),
    ]
}

/// A gzip batch holding one record whose header claims three: its CRC is right, only
/// reading the records shows the lie.
fn lying_gzip_batch() -> Bytes {
    use std::io::Write;
    let plain = raw::batch(&[b"abc"], 1_700_000_000_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain[61..]).unwrap();
    let body = gz.finish().unwrap();
    let mut batch = bytes::BytesMut::from(&plain[..61]);
    batch.extend_from_slice(&body);
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[21..23].copy_from_slice(&1i16.to_be_bytes()); // gzip
    batch[23..27].copy_from_slice(&2i32.to_be_bytes()); // last offset delta
    batch[57..61].copy_from_slice(&3i32.to_be_bytes()); // record count
    raw::reseal(&mut batch);
    batch.freeze()
}

/// The uncompressed form of the same lie: one record, a header claiming three.
fn lying_plain_batch() -> Bytes {
    let mut batch = raw::batch(&[b"abc"], 1_700_000_000_000);
    batch[23..27].copy_from_slice(&2i32.to_be_bytes());
    batch[57..61].copy_from_slice(&3i32.to_be_bytes());
    raw::reseal(&mut batch);
    batch.freeze()
}

fn join_group(group: &str, session_timeout_ms: i32) -> RequestKind {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))]),
    )
}

fn offset_fetch(groups: &[&str]) -> RequestKind {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    RequestKind::OffsetFetch(
        OffsetFetchRequest::default().with_groups(
            groups
                .iter()
                .map(|g| OffsetFetchRequestGroup::default().with_group_id(GroupId(s(g))))
                .collect(),
        ),
    )
}

fn offset_delete(group: &str, topic: &str) -> RequestKind {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    RequestKind::OffsetDelete(
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]),
    )
}

fn create_partitions(topic: &str, count: i32) -> RequestKind {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    RequestKind::CreatePartitions(
        CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(count)]),
    )
}

fn delete_topic(topic: &str) -> RequestKind {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    RequestKind::DeleteTopics(
        DeleteTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(topic)))
            ]),
    )
}

/// Waits until `group`'s coordinator answers (Kafka creates and loads
/// `__consumer_offsets` in the background): the group steps compare group logic, not
/// start-up timing.
fn await_coordinator(client: &mut Client, group: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = raw::find_coordinator(client, group);
        if found.error_code == 0 && offsets_readable(client, group) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no coordinator for {group}: {found:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Whether OffsetFetch for `group` answers without a coordinator error: Kafka names the
/// coordinator before it has loaded the group's `__consumer_offsets` partition.
fn offsets_readable(client: &mut Client, group: &str) -> bool {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    let ResponseKind::OffsetFetch(r) = client.call(
        ApiKey::OffsetFetch,
        8,
        &RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default().with_group_id(GroupId(s(group))),
        ])),
    ) else {
        panic!("OffsetFetch answer expected");
    };
    r.groups.iter().all(|g| g.error_code == 0)
}

/// One reference Kafka for every sequence: starting a JVM broker twice at once on two
/// cores is slow enough to be flaky.
#[test]
fn weir_answers_like_kafka() {
    let Some(kafka) = Broker::start_reference(&[("group.initial.rebalance.delay.ms", "0")]) else {
        return;
    };
    let weir = Broker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    stateless_sequence_agrees(&kafka, &weir);
    stateful_sequences_agree(&kafka, &weir);
}

fn stateless_sequence_agrees(kafka: &Broker, weir: &Broker) {
    let mut to_kafka = Client::connect_port(kafka.port);
    let mut to_weir = Client::connect_port(weir.port);
    let mut differences = Vec::new();
    for step in scenario() {
        if step.what == "simple commit" {
            await_coordinator(&mut to_kafka, "d-group");
            await_coordinator(&mut to_weir, "d-group");
        }
        let want = normalized(to_kafka.call(step.key, step.version, &step.body));
        let got = normalized(to_weir.call(step.key, step.version, &step.body));
        if want != got {
            differences.push(format!(
                "== {} ({:?} v{})\n-- Kafka:\n{want}\n-- weir:\n{got}",
                step.what, step.key, step.version
            ));
        }
        // Kafka applies topic changes through its controller: let them settle as a
        // client would before the next step.
        if matches!(
            step.key,
            ApiKey::CreateTopics | ApiKey::IncrementalAlterConfigs
        ) {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of the steps differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// A batch of `values` from an idempotent producer: its id, epoch and first sequence.
fn idempotent_batch(values: &[&[u8]], producer_id: i64, epoch: i16, sequence: i32) -> Bytes {
    let mut batch = raw::batch(values, 1_700_000_000_000);
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&sequence.to_be_bytes());
    raw::reseal(&mut batch);
    batch.freeze()
}

/// Steps that depend on what the broker said before (its producer id, the member id it
/// gave): run against one broker, returning each step's name and normalized answer, with
/// the broker's own ids replaced by placeholders.
fn stateful_steps(client: &mut Client) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut record = |what: &'static str, response: ResponseKind, ids: &[(&str, &str)]| {
        let mut text = normalized(response);
        for (id, placeholder) in ids {
            if !id.is_empty() {
                text = text.replace(id, placeholder);
            }
        }
        out.push((what, text));
    };
    for step in [
        step(
            "create",
            ApiKey::CreateTopics,
            7,
            create("s-topic", 1, 1, &[]),
        ),
        step(
            "create",
            ApiKey::CreateTopics,
            7,
            create("s-group-topic", 2, 1, &[]),
        ),
    ] {
        client.call(step.key, step.version, &step.body);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    // Idempotent producer: a batch, its exact retry, a gap, an older epoch.
    let init_request = |transactional_id: Option<&str>| {
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
    };
    record(
        "init producer id, empty transactional id",
        client.call(ApiKey::InitProducerId, 4, &init_request(Some(""))),
        &[],
    );
    // Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its first block of producer ids
    // arrives from the controller; clients retry, and so does this.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let init = loop {
        let ResponseKind::InitProducerId(init) =
            client.call(ApiKey::InitProducerId, 4, &init_request(None))
        else {
            panic!("InitProducerId answer expected");
        };
        if init.error_code != 14 || std::time::Instant::now() > deadline {
            break init;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert_eq!(init.error_code, 0);
    let send = |client: &mut Client, records: Bytes| {
        client.call(ApiKey::Produce, 9, &produce("s-topic", 0, records))
    };
    let first = idempotent_batch(&[b"a", b"b"], pid, epoch, 0);
    record("idempotent batch", send(client, first.clone()), &[]);
    record("its exact retry", send(client, first), &[]);
    record(
        "next sequence",
        send(client, idempotent_batch(&[b"c"], pid, epoch, 2)),
        &[],
    );
    record(
        "a sequence gap",
        send(client, idempotent_batch(&[b"d"], pid, epoch, 9)),
        &[],
    );
    record(
        "an older retry out of the window",
        send(client, idempotent_batch(&[b"a", b"b"], pid, epoch, 0)),
        &[],
    );

    // A classic group: member id handshake, join, sync, then the wrong generation and a
    // stranger.
    await_coordinator(client, "s-group");
    let join = |client: &mut Client, member: &str| {
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        client.call(
            ApiKey::JoinGroup,
            9,
            &RequestKind::JoinGroup(
                JoinGroupRequest::default()
                    .with_group_id(GroupId(s("s-group")))
                    .with_session_timeout_ms(10_000)
                    .with_rebalance_timeout_ms(10_000)
                    .with_member_id(s(member))
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))]),
            ),
        )
    };
    let ResponseKind::JoinGroup(first) = join(client, "") else {
        panic!("JoinGroup answer expected");
    };
    let member = first.member_id.to_string();
    record(
        "join without a member id",
        ResponseKind::JoinGroup(first),
        &[(&member, "<member>")],
    );
    let ResponseKind::JoinGroup(joined) = join(client, &member) else {
        panic!("JoinGroup answer expected");
    };
    let generation = joined.generation_id;
    record(
        "join with it",
        ResponseKind::JoinGroup(joined),
        &[(&member, "<member>")],
    );
    let heartbeat = |client: &mut Client, member: &str, generation: i32| {
        client.call(
            ApiKey::Heartbeat,
            4,
            &RequestKind::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(GroupId(s("s-group")))
                    .with_member_id(s(member))
                    .with_generation_id(generation),
            ),
        )
    };
    let ResponseKind::SyncGroup(synced) = client.call(
        ApiKey::SyncGroup,
        5,
        &RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(s("s-group")))
                .with_generation_id(generation)
                .with_member_id(s(&member))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range"))),
        ),
    ) else {
        panic!("SyncGroup answer expected");
    };
    record("sync", ResponseKind::SyncGroup(synced), &[]);
    record("heartbeat", heartbeat(client, &member, generation), &[]);
    record(
        "heartbeat, wrong generation",
        heartbeat(client, &member, generation + 1),
        &[],
    );
    record(
        "heartbeat, stranger",
        heartbeat(client, "stranger", generation),
        &[],
    );
    let member_commit = |client: &mut Client, member: &str, generation: i32| {
        let ResponseKind::OffsetCommit(r) = client.call(
            ApiKey::OffsetCommit,
            9,
            &match commit("s-group", generation, "s-group-topic", 0) {
                RequestKind::OffsetCommit(c) => {
                    RequestKind::OffsetCommit(c.with_member_id(s(member)))
                }
                _ => unreachable!(),
            },
        ) else {
            panic!("OffsetCommit answer expected");
        };
        ResponseKind::OffsetCommit(r)
    };
    record(
        "member commit",
        member_commit(client, &member, generation),
        &[],
    );
    record(
        "member commit, wrong generation",
        member_commit(client, &member, generation + 1),
        &[],
    );
    record(
        "member commit, stranger",
        member_commit(client, "stranger", generation),
        &[],
    );
    let ResponseKind::DeleteGroups(not_empty) = client.call(
        ApiKey::DeleteGroups,
        2,
        &RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("s-group"))]),
        ),
    ) else {
        panic!("DeleteGroups answer expected");
    };
    record(
        "delete a group with a member",
        ResponseKind::DeleteGroups(not_empty),
        &[],
    );
    out
}

fn stateful_sequences_agree(kafka: &Broker, weir: &Broker) {
    let want = stateful_steps(&mut Client::connect_port(kafka.port));
    let got = stateful_steps(&mut Client::connect_port(weir.port));
    let differences: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|((what, w), (_, g))| format!("== {what}\n-- Kafka:\n{w}\n-- weir:\n{g}"))
        .collect();
    assert!(
        differences.is_empty(),
        "{} of the steps differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
