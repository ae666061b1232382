//! Cluster metadata as a replicated log: topics, configs and producer ids are records
//! committed by the metadata quorum and replayed on start, and a data directory from before
//! the metadata log (topics as plain keys of the RocksDB store) upgrades in place with
//! nothing lost.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest,
    MetadataRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::{self, Client};
use protocol_tests::Broker;
use weir::meta_store::rocks::RocksStore;
use weir::meta_store::MetaStore;

fn topic_id_and_partitions(client: &mut Client, topic: &str) -> (uuid::Uuid, usize) {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(raw::topic_name(topic))),
    ]));
    let ResponseKind::Metadata(m) =
        client.call(ApiKey::Metadata, 12, &RequestKind::Metadata(request))
    else {
        panic!("Metadata answer expected");
    };
    assert_eq!(m.topics[0].error_code, 0, "{topic}");
    (m.topics[0].topic_id, m.topics[0].partitions.len())
}

/// A config as DescribeConfigs reports it, for a topic (2) or a broker (4).
fn described(client: &mut Client, resource_type: i8, name: &str, key: &str) -> Option<String> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))]);
    let ResponseKind::DescribeConfigs(d) = client.call(
        ApiKey::DescribeConfigs,
        4,
        &RequestKind::DescribeConfigs(request),
    ) else {
        panic!("DescribeConfigs answer expected");
    };
    assert_eq!(
        d.results[0].error_code, 0,
        "{:?}",
        d.results[0].error_message
    );
    d.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

fn set_cluster_default(client: &mut Client, key: &str, value: &str) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.to_string())))]),
    ]);
    let ResponseKind::IncrementalAlterConfigs(r) = client.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &RequestKind::IncrementalAlterConfigs(request),
    ) else {
        panic!("IncrementalAlterConfigs answer expected");
    };
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
}

fn producer_id(client: &mut Client) -> i64 {
    let ResponseKind::InitProducerId(r) = client.call(
        ApiKey::InitProducerId,
        4,
        &RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
        ),
    ) else {
        panic!("InitProducerId answer expected");
    };
    assert_eq!(r.error_code, 0);
    r.producer_id.0
}

fn produce_values(client: &mut Client, topic: &str, partition: i32, values: &[&[u8]]) -> i64 {
    let answer = raw::produce(
        client,
        raw::produce_request(topic, partition, -1, raw::batch(values, 1_000).freeze()),
    );
    assert_eq!(answer.error_code, 0);
    answer.base_offset
}

fn fetch_values(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, i64, Vec<u8>)> {
    let mut got: Vec<(i32, i64, Vec<u8>)> = protocol_tests::clients::consume(
        &broker.bootstrap(),
        topic,
        partitions,
        expected,
        Duration::from_secs(15),
    )
    .into_iter()
    .map(|r| (r.partition, r.offset, r.value.unwrap_or_default()))
    .collect();
    got.sort();
    got
}

#[test]
fn topics_configs_and_producer_ids_come_back_from_the_metadata_log() {
    let mut broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    raw::create_topic(&mut client, "kept", 3, &[("retention.ms", "123456789")]);
    let (id, _) = topic_id_and_partitions(&mut client, "kept");
    set_cluster_default(&mut client, "log.retention.ms", "987654321");
    let first = producer_id(&mut client);
    produce_values(&mut client, "kept", 2, &[b"a", b"b"]);
    drop(client);

    broker.kill9();
    broker.restart();
    let mut client = Client::connect(&broker);
    assert_eq!(topic_id_and_partitions(&mut client, "kept"), (id, 3));
    assert_eq!(
        described(&mut client, 2, "kept", "retention.ms").as_deref(),
        Some("123456789")
    );
    assert_eq!(
        described(&mut client, 4, "1", "log.retention.ms").as_deref(),
        Some("987654321")
    );
    assert!(
        producer_id(&mut client) > first,
        "producer ids never repeat after a crash"
    );
    assert_eq!(fetch_values(&broker, "kept", 3, 2).len(), 2);
}

/// Lays out the store as weir kept it before the metadata log: the quorum's keys gone,
/// topics, dynamic configs and the producer id block as plain keys (the layout of
/// `metadata/mod.rs` at cce29eb).
fn rewrite_as_before_the_metadata_log(data_dir: &std::path::Path, topic: &str, id: uuid::Uuid) {
    let store = RocksStore::open(&data_dir.join("__weir_meta")).unwrap();
    let stale: Vec<(String, Option<Vec<u8>>)> = store
        .scan_prefix("raft/")
        .unwrap()
        .into_iter()
        .map(|(key, _)| (key, None))
        .collect();
    assert!(!stale.is_empty(), "the metadata log lives in the store");
    store.write_batch_synced(&stale).unwrap();
    let topic_record = format!(
        r#"{{"name":"{topic}","id":"{id}","partitions":2,"replication_factor":1,"configs":{{"retention.ms":"55555555","cleanup.policy":"delete"}}}}"#
    );
    store
        .put(&format!("topic/{topic}"), topic_record.as_bytes())
        .unwrap();
    store
        .put(
            "broker_config/default",
            br#"{"log.retention.ms":"44444444"}"#,
        )
        .unwrap();
    store
        .put(
            "group_config/g",
            br#"{"consumer.session.timeout.ms":"50000"}"#,
        )
        .unwrap();
    store
        .put("producer_ids/next_block", &5000i64.to_be_bytes())
        .unwrap();
}

#[test]
fn a_data_directory_from_before_the_metadata_log_upgrades_in_place() {
    let mut broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    raw::create_topic(&mut client, "old", 2, &[]);
    let (id, _) = topic_id_and_partitions(&mut client, "old");
    produce_values(&mut client, "old", 0, &[b"zero", b"one"]);
    produce_values(&mut client, "old", 1, &[b"two"]);
    drop(client);
    assert_eq!(broker.stop(), Some(0));
    rewrite_as_before_the_metadata_log(&broker.data_dir, "old", id);

    broker.restart();
    let mut client = Client::connect(&broker);
    assert_eq!(
        topic_id_and_partitions(&mut client, "old"),
        (id, 2),
        "same topic, same id"
    );
    assert_eq!(
        described(&mut client, 2, "old", "retention.ms").as_deref(),
        Some("55555555")
    );
    assert_eq!(
        described(&mut client, 4, "1", "log.retention.ms").as_deref(),
        Some("44444444")
    );
    assert!(
        producer_id(&mut client) >= 5000,
        "the stored block is not handed out again"
    );
    let values: BTreeMap<(i32, i64), Vec<u8>> = fetch_values(&broker, "old", 2, 3)
        .into_iter()
        .map(|(p, o, v)| ((p, o), v))
        .collect();
    assert_eq!(
        values,
        BTreeMap::from([
            ((0, 0), b"zero".to_vec()),
            ((0, 1), b"one".to_vec()),
            ((1, 0), b"two".to_vec())
        ]),
        "the log directories are untouched"
    );
    // Changes after the upgrade go to the log and survive the next restart.
    raw::create_topic(&mut client, "new", 1, &[]);
    drop(client);
    assert_eq!(broker.stop(), Some(0));
    {
        let store = RocksStore::open(&broker.data_dir.join("__weir_meta")).unwrap();
        for prefix in ["topic/", "broker_config/", "group_config/", "producer_ids/"] {
            assert!(
                store.scan_prefix(prefix).unwrap().is_empty(),
                "the old {prefix} keys are deleted once moved"
            );
        }
    }
    broker.restart();
    let mut client = Client::connect(&broker);
    assert_eq!(topic_id_and_partitions(&mut client, "old"), (id, 2));
    assert_eq!(topic_id_and_partitions(&mut client, "new").1, 1);
    assert!(broker
        .log_text()
        .contains("moved the metadata store's topics and configs into the metadata log"));
}

/// The log's history (create, delete, create again under the same name) is replayed on
/// every start; it must rebuild the view, not redo the deletion against today's data.
#[test]
fn a_topic_deleted_and_created_again_keeps_its_data_across_restarts() {
    let mut broker = Broker::start(&[("file.delete.delay.ms", "0")]);
    let mut client = Client::connect(&broker);
    raw::create_topic(&mut client, "again", 1, &[]);
    produce_values(&mut client, "again", 0, &[b"old"]);
    assert_eq!(raw::delete_topic(&mut client, "again"), 0);
    raw::create_topic(&mut client, "again", 1, &[]);
    let (id, _) = topic_id_and_partitions(&mut client, "again");
    produce_values(&mut client, "again", 0, &[b"new-1", b"new-2"]);
    drop(client);
    for restart in 0..2 {
        if restart == 0 {
            assert_eq!(broker.stop(), Some(0));
            broker.restart();
        } else {
            broker.restart(); // kill -9, then start
        }
        let mut client = Client::connect(&broker);
        assert_eq!(topic_id_and_partitions(&mut client, "again"), (id, 1));
        let values: Vec<Vec<u8>> = fetch_values(&broker, "again", 1, 2)
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(
            values,
            vec![b"new-1".to_vec(), b"new-2".to_vec()],
            "restart {restart}"
        );
    }
    let metadata =
        std::fs::read_to_string(broker.data_dir.join("again-0/partition.metadata")).unwrap();
    assert!(metadata.starts_with("version: 0\ntopic_id: "), "{metadata}");
}

/// A partition directory that no topic of the metadata log owns (a deletion committed
/// just before a crash) is set aside as Kafka sets aside stray logs, not deleted, and a
/// topic of that name can be created again.
#[test]
fn partition_directories_no_topic_owns_are_set_aside() {
    let mut broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    raw::create_topic(&mut client, "kept", 1, &[]);
    drop(client);
    assert_eq!(broker.stop(), Some(0));
    let ghost = broker.data_dir.join("ghost-0");
    std::fs::create_dir(&ghost).unwrap();
    std::fs::write(ghost.join("00000000000000000000.log"), b"").unwrap();
    std::fs::write(
        ghost.join("partition.metadata"),
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n",
    )
    .unwrap();

    broker.restart();
    let mut client = Client::connect(&broker);
    assert!(!ghost.exists(), "set aside");
    let set_aside: Vec<String> = std::fs::read_dir(&broker.data_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ghost-0.") && n.ends_with("-stray"))
        .collect();
    assert_eq!(set_aside.len(), 1, "kept, under a -stray name");
    assert!(
        broker.data_dir.join("kept-0").exists(),
        "owned directories stay"
    );
    raw::create_topic(&mut client, "ghost", 1, &[]);
    produce_values(&mut client, "ghost", 0, &[b"fresh"]);
    assert_eq!(fetch_values(&broker, "ghost", 1, 1)[0].2, b"fresh".to_vec());
}
