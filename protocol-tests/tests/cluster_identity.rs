//! Which cluster and which node a log directory belongs to, as Kafka 4.1 keeps it:
//! `weir format` (kafka-storage.sh format) and `weir random-uuid`, `meta.properties`
//! checked on every start, `broker.id` as `node.id`'s synonym, and the quorum settings of
//! `process.roles` and `controller.quorum.voters` checked before anything is written.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeConfigsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::Client;
use protocol_tests::{free_port, weir_bin, Broker};

fn weir(args: &[&str]) -> Output {
    Command::new(weir_bin()).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Starts the binary on `dir` with `overrides`, expecting it to refuse: its exit code and
/// what it printed. Fails if it is still running after 10 s.
fn refused(dir: &Path, overrides: &[&str]) -> (i32, String) {
    let mut command = Command::new(weir_bin());
    command
        .arg("--override")
        .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port()))
        .arg("--override")
        .arg(format!("log.dirs={}", dir.display()));
    for o in overrides {
        command.arg("--override").arg(o);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("weir started with {overrides:?}; it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

fn cluster_id_served(broker: &Broker) -> String {
    let mut client = Client::connect(broker);
    let ResponseKind::DescribeCluster(cluster) = client.call(
        ApiKey::DescribeCluster,
        1,
        &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) else {
        panic!("DescribeCluster answer expected");
    };
    cluster.cluster_id.to_string()
}

fn meta_properties(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("meta.properties")).unwrap()
}

#[test]
fn format_then_start_serves_the_formatted_cluster_id() {
    let out = weir(&["random-uuid"]);
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 22, "{id}");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("logs");
    let log_dirs = format!("log.dirs={}", dir.display());
    let out = weir(&["format", "-t", &id, "--override", &log_dirs, "--standalone"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("with cluster.id {id}")));
    let props = meta_properties(&dir);
    assert!(props.contains(&format!("cluster.id={id}\n")), "{props}");
    assert!(props.contains("node.id=1\n") && props.contains("directory.id="));
    assert!(props.contains("version=1\n"));

    // Formatting again is refused, as kafka-storage.sh does, unless told to ignore it.
    let other = String::from_utf8(weir(&["random-uuid"]).stdout).unwrap();
    let again = weir(&["format", "-t", other.trim(), "--override", &log_dirs]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("is already formatted. Use --ignore-formatted"));
    let ignored = weir(&["format", "-g", "-t", other.trim(), "--override", &log_dirs]);
    assert!(ignored.status.success());
    assert_eq!(meta_properties(&dir), props, "nothing rewritten");
    let bad = weir(&["format", "-t", "not-a-uuid", "--override", &log_dirs]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("does not appear to be a valid UUID"));

    // The first start serves the formatted id, and so does the next one.
    let mut broker = Broker::start_with(&[], &[], Some(&dir));
    assert_eq!(cluster_id_served(&broker), id);
    broker.restart();
    assert_eq!(cluster_id_served(&broker), id);
    assert_eq!(meta_properties(&dir), props);
}

#[test]
fn an_unformatted_directory_is_formatted_on_first_start() {
    let broker = Broker::start_with(&[], &[("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qg")], None);
    assert_eq!(cluster_id_served(&broker), "MkU3OEVBNTcwNTJENDM2Qg");
    let props = meta_properties(&broker.data_dir);
    assert!(
        props.contains("cluster.id=MkU3OEVBNTcwNTJENDM2Qg\n"),
        "{props}"
    );
}

#[test]
fn a_directory_of_another_cluster_or_node_is_refused_as_it_is() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("logs");
    let mut broker = Broker::start_with(&[], &[], Some(&dir));
    let ours = cluster_id_served(&broker);
    broker.stop();
    drop(broker);
    let marker = dir.join(".kafka_cleanshutdown");
    assert!(marker.exists());

    // Formatted for another cluster: refused, naming both ids; nothing changes, not even
    // in the metadata store.
    let store_before = listing(&dir.join("__weir_meta"));
    let props = meta_properties(&dir);
    let foreign = "AAAAAAAAAAAAAAAAAAAAAA";
    let swapped = props.replace(
        &format!("cluster.id={ours}"),
        &format!("cluster.id={foreign}"),
    );
    std::fs::write(dir.join("meta.properties"), &swapped).unwrap();
    let (code, said) = refused(&dir, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!(
            "Invalid cluster.id in: {}",
            dir.join("meta.properties").display()
        )) && said.contains(&format!("Expected {ours}, but read {foreign}")),
        "{said}"
    );
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert_eq!(meta_properties(&dir), swapped);
    assert!(marker.exists(), "the clean shutdown marker is left alone");
    assert_eq!(listing(&dir.join("__weir_meta")), store_before);
    std::fs::write(dir.join("meta.properties"), &props).unwrap();

    // Another node's directory: refused with Kafka's words.
    let (code, said) = refused(&dir, &["node.id=2"]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("Stored node id 1 doesn't match previous node id 2"),
        "{said}"
    );
    assert!(marker.exists());

    // Its own node and cluster again: served, nothing lost. A file as weir wrote it before
    // it recorded directory ids upgrades in place.
    std::fs::write(
        dir.join("meta.properties"),
        format!("version=1\ncluster.id={ours}\nnode.id=1\n"),
    )
    .unwrap();
    let broker = Broker::start_with(&[], &[], Some(&dir));
    assert_eq!(cluster_id_served(&broker), ours);
}

/// Names, sizes and modification times of a directory's files.
fn listing(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn broker_id_is_node_ids_synonym() {
    let broker = Broker::start(&[("broker.id", "5")]);
    let mut client = Client::connect(&broker);
    let ResponseKind::DescribeCluster(cluster) = client.call(
        ApiKey::DescribeCluster,
        1,
        &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) else {
        panic!("DescribeCluster answer expected");
    };
    assert_eq!(cluster.controller_id.0, 5);
    assert_eq!(cluster.brokers[0].broker_id.0, 5);
    assert!(meta_properties(&broker.data_dir).contains("node.id=5\n"));

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("never");
    let (code, said) = refused(&dir, &["broker.id=5", "node.id=6"]);
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("You must set `node.id` to the same value as `broker.id`."),
        "{said}"
    );
    assert!(!dir.exists(), "nothing written");
    let (code, said) = refused(&dir, &["node.id=-3"]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("must be at least 0"), "{said}");
    assert!(!dir.exists(), "nothing written");
    // broker.id=-1 is Kafka's "none": node.id decides.
    let broker = Broker::start(&[("broker.id", "-1"), ("node.id", "4")]);
    assert!(meta_properties(&broker.data_dir).contains("node.id=4\n"));
    // Both synonyms report the id in force, as Kafka 4.1 does.
    let mut client = Client::connect(&broker);
    let ResponseKind::DescribeConfigs(described) = client.call(
        ApiKey::DescribeConfigs,
        4,
        &RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("4"))
                .with_configuration_keys(Some(vec![
                    StrBytes::from_static_str("broker.id"),
                    StrBytes::from_static_str("node.id"),
                ])),
        ])),
    ) else {
        panic!("DescribeConfigs answer expected");
    };
    let values: Vec<(String, Option<String>)> = described.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    assert_eq!(
        values,
        vec![
            ("broker.id".to_string(), Some("4".to_string())),
            ("node.id".to_string(), Some("4".to_string()))
        ]
    );
}

#[test]
fn quorum_settings_are_checked_before_anything_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("never");
    let cases: &[(&[&str], &str)] = &[
        (
            &["controller.quorum.voters=1@localhost:9093,1@localhost:9094"],
            "node 1 is listed twice",
        ),
        (
            &["controller.quorum.voters=one@localhost:9093"],
            "is not of the form {id}@{host}:{port}",
        ),
        (
            &["controller.quorum.voters=2@localhost:9093"],
            "the node id 1 must be included in the set of voters",
        ),
        (
            &[
                "process.roles=broker",
                "controller.quorum.voters=1@localhost:9093",
            ],
            "the node id 1 must not be included in the set of voters",
        ),
        (
            &["process.roles=broker,coordinator"],
            "Unknown process role 'coordinator'",
        ),
        (
            &["process.roles=broker,broker"],
            "Duplicate role names found in `process.roles`",
        ),
        (
            &["controller.quorum.voters=1@localhost:9093,2@localhost:9094,3@localhost:9095"],
            "controller.listener.names must contain at least one value appearing in the 'listeners' configuration",
        ),
        (
            &[
                "process.roles=broker",
                "controller.quorum.voters=2@localhost:9093",
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                "controller.listener.names=CONTROLLER",
            ],
            "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role",
        ),
        (
            &[
                "process.roles=controller",
                "controller.quorum.voters=1@localhost:9093",
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                "controller.listener.names=CONTROLLER",
            ],
            "The listeners config must only contain KRaft controller listeners",
        ),
        (
            &["process.roles=broker"],
            "a broker-only node needs controller.quorum.voters or controller.quorum.bootstrap.servers",
        ),
    ];
    for (overrides, expected) in cases {
        let (code, said) = refused(&dir, overrides);
        assert_eq!(code, 2, "{overrides:?}: {said}");
        assert!(said.contains(expected), "{overrides:?}: {said}");
        assert!(!dir.exists(), "{overrides:?}: nothing written");
    }
    // Kafka's own single-node settings (a combined node, the only voter) start.
    let broker = Broker::start(&[
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", "1@127.0.0.1:19093"),
        ("controller.listener.names", "CONTROLLER"),
    ]);
    assert_eq!(cluster_id_served(&broker).len(), 22);
}
