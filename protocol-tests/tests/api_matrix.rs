//! Every API at every version the broker advertises answers with a response that decodes
//! at that version: no field a version lacks, no closed connection, correlation kept.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, StrBytes};
use protocol_tests::raw::Client;
use protocol_tests::Broker;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn request(key: ApiKey, version: i16, topic_id: uuid::Uuid) -> Option<RequestKind> {
    let topic = "matrix";
    Some(match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("matrix"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ),
        ApiKey::Metadata => RequestKind::Metadata(
            MetadataRequest::default()
                .with_topics(if version == 0 {
                    Some(vec![
                        MetadataRequestTopic::default().with_name(Some(name(topic)))
                    ])
                } else {
                    None
                })
                .with_include_topic_authorized_operations(version >= 8),
        ),
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![{
                    let data = TopicProduceData::default().with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(protocol_tests::raw::batch(&[b"v"], 1).freeze())),
                    ]);
                    if version >= 13 {
                        data.with_topic_id(topic_id)
                    } else {
                        data.with_name(name(topic))
                    }
                }]),
        ),
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![{
                    let t = FetchTopic::default().with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)]);
                    if version >= 13 {
                        t.with_topic_id(topic_id)
                    } else {
                        t.with_topic(name(topic))
                    }
                }]),
        ),
        ApiKey::ListOffsets => RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
        ),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_leader_epoch(0)])]),
        ),
        ApiKey::CreateTopics => RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(name(&format!("matrix-{version}")))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                    CreatableTopic::default()
                        .with_name(name(topic))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ]),
        ),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name("absent")))
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name("absent")])
        }),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(version >= 3)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("matrix")),
                    DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(StrBytes::from_static_str("1")),
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("absent")),
                ]),
        ),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(
            kafka_protocol::messages::DescribeQuorumRequest::default().with_topics(vec![
                kafka_protocol::messages::describe_quorum_request::TopicData::default()
                    .with_topic_name(name("__cluster_metadata"))
                    .with_partitions(vec![
                        kafka_protocol::messages::describe_quorum_request::PartitionData::default(),
                    ]),
            ]),
        ),
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(2)]),
        ),
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("matrix"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("86400000")))]),
        ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("matrix"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_static_str("3600000"))),
                    ]),
            ]),
        ),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(
            DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(0)])]),
        ),
        ApiKey::DescribeLogDirs => {
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None))
        }
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default().with_response_partition_limit(2000),
        ),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(if version >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("matrix-g")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("matrix-g"))
        }),
        ApiKey::JoinGroup => {
            // A group per version: each join settles alone (no initial delay in this test).
            let mut join = JoinGroupRequest::default()
                .with_group_id(group(&format!("matrix-join-{version}")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0\0\0"))]);
            if version >= 1 {
                join.rebalance_timeout_ms = 10_000;
            }
            RequestKind::JoinGroup(join)
        }
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(group("matrix-nobody"))
                .with_generation_id(1)
                .with_member_id(StrBytes::from_static_str("m")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group("matrix-nobody"))
                .with_generation_id(1)
                .with_member_id(StrBytes::from_static_str("m")),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(if version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group("matrix-nobody"))
                .with_members(vec![leave_group_request::MemberIdentity::default()
                    .with_member_id(StrBytes::from_static_str("m"))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group("matrix-nobody"))
                .with_member_id(StrBytes::from_static_str("m"))
        }),
        ApiKey::OffsetCommit => {
            let mut commit = OffsetCommitRequest::default()
                .with_group_id(group("matrix-g"))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
                        ]),
                ]);
            if (2..=4).contains(&version) {
                commit.retention_time_ms = -1;
            }
            RequestKind::OffsetCommit(commit)
        }
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(if version >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group("matrix-g"))
                    .with_topics(None),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group("matrix-g"))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name(topic))
                        .with_partition_indexes(vec![0]),
                ]))
        }),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group("matrix-g"))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ]),
                ]),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![group("matrix-g"), group("matrix-none")]),
        ),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group("matrix-none")]),
        ),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&format!("matrix-cg-{version}")))
                .with_member_id(StrBytes::from_string(format!("matrix-member-{version}")))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![name(topic)]))
                .with_topic_partitions(Some(vec![])),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![group("matrix-cg-0"), group("matrix-none")]),
        ),
        _ => return None,
    })
}

/// The oldest version kafka-protocol encodes (Kafka 4's oldest).
fn first_codec_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => ProduceRequest::VERSIONS.min,
        ApiKey::Fetch => FetchRequest::VERSIONS.min,
        ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS.min,
        ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS.min,
        ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS.min,
        ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS.min,
        ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS.min,
        ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS.min,
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS.min,
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS.min,
        _ => 0,
    }
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

#[test]
fn every_advertised_version_answers_and_decodes() {
    let broker = Broker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let mut client = Client::connect(&broker);
    let ResponseKind::ApiVersions(versions) = client.call(
        ApiKey::ApiVersions,
        3,
        &request(ApiKey::ApiVersions, 3, uuid::Uuid::nil()).unwrap(),
    ) else {
        panic!("ApiVersions answer expected");
    };
    assert_eq!(versions.error_code, 0);
    // Create the topic every request names, and learn its id.
    client.call(
        ApiKey::CreateTopics,
        7,
        &request(ApiKey::CreateTopics, 7, uuid::Uuid::nil()).unwrap(),
    );
    let ResponseKind::Metadata(metadata) = client.call(
        ApiKey::Metadata,
        12,
        &request(ApiKey::Metadata, 12, uuid::Uuid::nil()).unwrap(),
    ) else {
        panic!("Metadata answer expected");
    };
    let topic_id = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| *n.0 == *"matrix"))
        .unwrap()
        .topic_id;
    let mut checked = 0;
    for api in &versions.api_keys {
        let key = ApiKey::try_from(api.api_key).unwrap();
        for version in api.min_version..=api.max_version {
            if version < first_codec_version(key) {
                // A version Kafka 4 removed: kafka-protocol cannot encode it; the old-client
                // suites (protocol-tests/python/test_old_clients.py) send those.
                continue;
            }
            let body = request(key, version, topic_id)
                .unwrap_or_else(|| panic!("no request built for {key:?}"));
            let response = client.call(key, version, &body);
            if let ResponseKind::Produce(p) = &response {
                assert_eq!(
                    p.responses[0].partition_responses[0].error_code, 0,
                    "produce v{version}"
                );
            }
            if let ResponseKind::Fetch(f) = &response {
                assert_eq!(f.error_code, 0, "fetch v{version}");
                assert_eq!(
                    f.responses[0].partitions[0].error_code, 0,
                    "fetch v{version}"
                );
            }
            if let ResponseKind::OffsetCommit(c) = &response {
                assert_eq!(c.topics[0].partitions[0].error_code, 0, "commit v{version}");
            }
            if let ResponseKind::ConsumerGroupHeartbeat(h) = &response {
                assert_eq!(h.error_code, 0, "consumer heartbeat v{version}");
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "checked {checked} api versions");
}
