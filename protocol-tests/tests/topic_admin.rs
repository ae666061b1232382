//! Topic administration at the protocol level: deletion by id and its disk effects,
//! validate_only, explicit assignments, DescribeTopicPartitions paging, live config changes.

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::Client;
use protocol_tests::Broker;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(client: &mut Client, topic: CreatableTopic, validate_only: bool) -> (i16, uuid::Uuid) {
    let request = CreateTopicsRequest::default()
        .with_validate_only(validate_only)
        .with_topics(vec![topic]);
    let ResponseKind::CreateTopics(r) =
        client.call(ApiKey::CreateTopics, 7, &RequestKind::CreateTopics(request))
    else {
        panic!()
    };
    (r.topics[0].error_code, r.topics[0].topic_id)
}

fn simple(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    protocol_tests::raw::new_topic(topic, partitions, configs)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn delete_by_id_removes_data_after_the_delay_and_validate_only_creates_nothing() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    let (code, _) = create(&mut client, simple("dry", 3, &[]), true);
    assert_eq!(code, 0);
    assert!(
        !broker.data_dir.join("dry-0").exists(),
        "validate_only touches no disk"
    );

    let (code, id) = create(
        &mut client,
        simple("doomed", 2, &[("file.delete.delay.ms", "200")]),
        false,
    );
    assert_eq!(code, 0);
    assert!(broker.data_dir.join("doomed-1").is_dir());
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteTopicState::default().with_topic_id(id)]);
    let ResponseKind::DeleteTopics(r) =
        client.call(ApiKey::DeleteTopics, 6, &RequestKind::DeleteTopics(request))
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[0].name.as_ref().map(|n| n.0.to_string()),
        Some("doomed".to_string())
    );
    assert!(
        !broker.data_dir.join("doomed-0").exists(),
        "renamed away at once"
    );
    wait_until("the -delete directories are removed", || {
        !std::fs::read_dir(&broker.data_dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("-delete"))
    });
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_topic_id(id)]);
    let ResponseKind::DeleteTopics(r) =
        client.call(ApiKey::DeleteTopics, 6, &RequestKind::DeleteTopics(request))
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
}

#[test]
fn deletion_can_be_disabled() {
    let broker = Broker::start(&[("delete.topic.enable", "false")]);
    let mut client = Client::connect(&broker);
    create(&mut client, simple("kept", 1, &[]), false);
    let request = DeleteTopicsRequest::default().with_topic_names(vec![name("kept")]);
    let ResponseKind::DeleteTopics(r) =
        client.call(ApiKey::DeleteTopics, 5, &RequestKind::DeleteTopics(request))
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 73, "TOPIC_DELETION_DISABLED");
    assert!(broker.data_dir.join("kept-0").is_dir());
}

#[test]
fn explicit_assignments_are_checked() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    let assigned = |brokers: Vec<Vec<i32>>| {
        CreatableTopic::default()
            .with_name(name("assigned"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                brokers
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i as i32)
                            .with_broker_ids(b.into_iter().map(BrokerId).collect())
                    })
                    .collect(),
            )
    };
    assert_eq!(
        create(&mut client, assigned(vec![vec![1], vec![7]]), false).0,
        39,
        "INVALID_REPLICA_ASSIGNMENT"
    );
    assert_eq!(
        create(&mut client, assigned(vec![vec![1], vec![1]]), false).0,
        0
    );
    assert!(broker.data_dir.join("assigned-1").is_dir());
    assert_eq!(
        create(
            &mut client,
            simple("rf3", 1, &[]).with_replication_factor(3),
            false
        )
        .0,
        38,
        "INVALID_REPLICATION_FACTOR"
    );
}

#[test]
fn describe_topic_partitions_pages_with_a_cursor() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, simple("pa", 3, &[]), false);
    create(&mut client, simple("pb", 2, &[]), false);
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let request = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                TopicRequest::default().with_name(name("pb")),
                TopicRequest::default().with_name(name("pa")),
            ])
            .with_response_partition_limit(2)
            .with_cursor(cursor.clone());
        let ResponseKind::DescribeTopicPartitions(r) = client.call(
            ApiKey::DescribeTopicPartitions,
            0,
            &RequestKind::DescribeTopicPartitions(request),
        ) else {
            panic!()
        };
        for t in &r.topics {
            assert_eq!(t.error_code, 0);
            for p in &t.partitions {
                seen.push((
                    t.name.as_ref().unwrap().0.to_string(),
                    p.partition_index,
                    p.leader_id.0,
                ));
            }
        }
        let count: usize = r.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(count <= 2, "the partition limit holds");
        match r.next_cursor {
            Some(c) => {
                cursor = Some(
                    Cursor::default()
                        .with_topic_name(c.topic_name)
                        .with_partition_index(c.partition_index),
                )
            }
            None => break,
        }
    }
    let expected: Vec<(String, i32, i32)> = [("pa", 0), ("pa", 1), ("pa", 2), ("pb", 0), ("pb", 1)]
        .iter()
        .map(|(t, p)| (t.to_string(), *p, 1))
        .collect();
    assert_eq!(seen, expected, "every partition once, topics in name order");
}

#[test]
fn config_changes_apply_to_live_partitions() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    create(&mut client, simple("live", 1, &[]), false);
    let produce = |client: &mut Client, bytes: usize| {
        let batch = protocol_tests::raw::value_batch(bytes);
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                kafka_protocol::messages::produce_request::TopicProduceData::default()
                    .with_name(name("live"))
                    .with_partition_data(vec![
                        kafka_protocol::messages::produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch)),
                    ]),
            ]);
        let ResponseKind::Produce(r) =
            client.call(ApiKey::Produce, 9, &RequestKind::Produce(request))
        else {
            panic!()
        };
        r.responses[0].partition_responses[0].error_code
    };
    assert_eq!(produce(&mut client, 5000), 0);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("live"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("max.message.bytes"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("1000")))]),
    ]);
    let ResponseKind::IncrementalAlterConfigs(r) = client.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &RequestKind::IncrementalAlterConfigs(request),
    ) else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        produce(&mut client, 5000),
        10,
        "MESSAGE_TOO_LARGE right after the change, no restart"
    );
    assert_eq!(produce(&mut client, 100), 0);
}
