//! Several weir processes forming one cluster over the metadata quorum: formation, brokers
//! registering and fenced, topics placed across brokers, admin requests sent to any node,
//! the active controller killed, and nodes that do not belong refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeConfigsRequest, DescribeQuorumRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::{self, Client};
use protocol_tests::{free_port, Broker, Cluster};

/// A partition's leader, replicas and ISR.
type Placement = (i32, Vec<i32>, Vec<i32>);

/// What a node says about the cluster: brokers, controller and every partition's leader
/// and replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    brokers: Vec<(i32, u16)>,
    controller: i32,
    partitions: BTreeMap<(String, i32), Placement>,
}

fn view(port: u16) -> View {
    let mut client = Client::connect_port(port);
    let ResponseKind::Metadata(m) = client.call(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!("Metadata answer expected");
    };
    let mut brokers: Vec<(i32, u16)> = m
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port as u16))
        .collect();
    brokers.sort();
    let mut partitions = BTreeMap::new();
    for t in &m.topics {
        for p in &t.partitions {
            partitions.insert(
                (t.name.as_ref().unwrap().to_string(), p.partition_index),
                (
                    p.leader_id.0,
                    p.replica_nodes.iter().map(|b| b.0).collect(),
                    p.isr_nodes.iter().map(|b| b.0).collect(),
                ),
            );
        }
    }
    View {
        brokers,
        controller: m.controller_id.0,
        partitions,
    }
}

/// Waits until `check` holds, or fails naming what was last seen.
fn eventually<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = probe();
        if check(&seen) {
            return seen;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}; last seen {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create(port: u16, name: &str, partitions: i32, factor: i16) -> (i16, Option<String>) {
    let mut client = Client::connect_port(port);
    let topic = raw::new_topic(name, partitions, &[]).with_replication_factor(factor);
    let r = raw::create_topics(&mut client, vec![topic]);
    (
        r.topics[0].error_code,
        r.topics[0].error_message.as_ref().map(|m| m.to_string()),
    )
}

fn ports(cluster: &Cluster) -> Vec<u16> {
    cluster.nodes.iter().map(|n| n.port).collect()
}

#[test]
fn three_nodes_form_one_cluster_and_every_node_tells_the_same_story() {
    let mut cluster = Cluster::start(3, &[]);
    let ports = ports(&cluster);
    let all_brokers: Vec<(i32, u16)> = (1..=3).map(|id| (id, ports[id as usize - 1])).collect();
    let first = eventually(
        "three brokers registered and unfenced",
        Duration::from_secs(15),
        || view(ports[0]),
        |v| v.brokers == all_brokers && v.controller > 0,
    );
    // Admin requests to a node that is not the active controller are forwarded to it.
    let other = ports[(first.controller as usize) % 3];
    assert_eq!(create(other, "r1", 3, 1), (0, None));
    assert_eq!(create(other, "r2", 2, 2), (0, None));
    assert_eq!(create(other, "r3", 3, 3), (0, None));
    let (code, message) = create(other, "r4", 1, 4);
    assert_eq!(code, 38, "INVALID_REPLICATION_FACTOR: {message:?}");
    assert!(message.unwrap().contains("only 3 broker(s) are registered"));
    assert_eq!(
        create(ports[0], "r3", 1, 1).0,
        36,
        "TOPIC_ALREADY_EXISTS from any node"
    );

    // Every node converges on one view.
    let settled = eventually(
        "node 1 sees the topics",
        Duration::from_secs(10),
        || view(ports[0]),
        |v| v.partitions.len() == 8,
    );
    for port in &ports {
        eventually(
            "every node agrees",
            Duration::from_secs(10),
            || view(*port),
            |v| *v == settled,
        );
    }
    for ((topic, partition), (leader, replicas, isr)) in &settled.partitions {
        let factor: usize = topic[1..].parse().unwrap();
        let mut distinct = replicas.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            (replicas.len(), distinct.len()),
            (factor, factor),
            "{topic}-{partition}: distinct brokers"
        );
        assert_eq!(
            leader, &replicas[0],
            "{topic}-{partition}: the first replica leads"
        );
        assert_eq!(
            isr,
            &vec![*leader],
            "{topic}-{partition}: followers do not replicate yet"
        );
    }
    let leaders: std::collections::BTreeSet<i32> = settled
        .partitions
        .iter()
        .filter(|((t, _), _)| t == "r3")
        .map(|(_, (l, _, _))| *l)
        .collect();
    assert_eq!(leaders.len(), 3, "leaderships are spread over the brokers");

    // Clients reach each partition's leader, from any bootstrap node.
    let bootstrap = cluster.bootstrap();
    let values: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    let third = format!("127.0.0.1:{}", ports[2]);
    protocol_tests::clients::produce_round_robin(&third, "r3", 3, &values, "produce");
    let read = protocol_tests::clients::consume(&bootstrap, "r3", 3, 30, Duration::from_secs(20));
    assert_eq!(read.len(), 30);

    // A partition asked of a broker that does not lead it is refused with
    // NOT_LEADER_OR_FOLLOWER, so that clients go to the leader.
    let (leader, _, _) = &settled.partitions[&("r1".to_string(), 0)];
    let elsewhere = ports[(*leader as usize) % 3];
    let mut client = Client::connect_port(elsewhere);
    let answer = raw::produce(
        &mut client,
        raw::produce_request("r1", 0, 1, raw::batch(&[b"x"], 0).freeze()),
    );
    assert_eq!(answer.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    // Since Produce v10 and Fetch v16 the answer names the leader and its endpoint
    // (KIP-951), so the client need not ask for metadata first.
    let request = raw::produce_request("r1", 0, 1, raw::batch(&[b"x"], 0).freeze());
    let ResponseKind::Produce(produced) =
        client.call(ApiKey::Produce, 11, &RequestKind::Produce(request))
    else {
        panic!("Produce answer expected");
    };
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 6);
    assert_eq!(partition.current_leader.leader_id.0, *leader);
    assert_eq!(
        produced
            .node_endpoints
            .iter()
            .map(|e| (e.node_id.0, e.port))
            .collect::<Vec<_>>(),
        vec![(*leader, ports[*leader as usize - 1] as i32)]
    );

    // A group's coordinator is the leader of its offsets partition; another node refuses
    // group changes with NOT_COORDINATOR.
    let coordinator = raw::find_coordinator(&mut client, "g");
    assert_eq!(coordinator.error_code, 0, "{:?}", coordinator.error_message);
    let other = ports[(coordinator.node_id.0 as usize) % 3];
    let heartbeat = kafka_protocol::messages::HeartbeatRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(
            kafka_protocol::protocol::StrBytes::from_static_str("g"),
        ))
        .with_generation_id(1)
        .with_member_id(kafka_protocol::protocol::StrBytes::from_static_str("m"));
    let ResponseKind::Heartbeat(answer) =
        Client::connect_port(other).call(ApiKey::Heartbeat, 4, &RequestKind::Heartbeat(heartbeat))
    else {
        panic!("Heartbeat answer expected");
    };
    assert_eq!(answer.error_code, 16, "NOT_COORDINATOR");
    // Reads and deletions too: the group's state lives on its coordinator only.
    let delete = kafka_protocol::messages::DeleteGroupsRequest::default().with_groups_names(vec![
        kafka_protocol::messages::GroupId(kafka_protocol::protocol::StrBytes::from_static_str("g")),
    ]);
    let ResponseKind::DeleteGroups(deleted) = Client::connect_port(other).call(
        ApiKey::DeleteGroups,
        2,
        &RequestKind::DeleteGroups(delete),
    ) else {
        panic!("DeleteGroups answer expected");
    };
    assert_eq!(deleted.results[0].error_code, 16, "NOT_COORDINATOR");
}

/// The partition directories of `topic` in a node's data directory.
fn hosted(data_dir: &std::path::Path, topic: &str) -> Vec<i32> {
    let mut found: Vec<i32> = std::fs::read_dir(data_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (t, index) = name.rsplit_once('-')?;
            (t == topic).then(|| index.parse().ok()).flatten()
        })
        .collect();
    found.sort();
    found
}

#[test]
fn replicas_live_only_on_their_brokers_and_span_racks() {
    // Racks a, a, b: a partition with two replicas has one on each rack, so every one
    // has a replica on node 3.
    let mut cluster = Cluster::start_each(
        3,
        &[],
        &[
            &[("broker.rack", "a")],
            &[("broker.rack", "a")],
            &[("broker.rack", "b")],
        ],
    );
    let ports = ports(&cluster);
    eventually(
        "three brokers registered",
        Duration::from_secs(15),
        || view(ports[0]).brokers.len(),
        |n| *n == 3,
    );
    assert_eq!(create(ports[1], "spread", 6, 2), (0, None));
    assert_eq!(create(ports[1], "single", 3, 1), (0, None));
    let settled = eventually(
        "every node sees both topics",
        Duration::from_secs(10),
        || ports.iter().map(|p| view(*p)).collect::<Vec<_>>(),
        |views| views.iter().all(|v| v.partitions.len() == 9),
    );
    let placement = &settled[0].partitions;
    for ((topic, partition), (_, replicas, _)) in placement {
        if topic == "spread" {
            assert!(
                replicas.contains(&3),
                "{topic}-{partition}: {replicas:?} spans racks a and b"
            );
        }
    }
    // Each node holds a log for the partitions it is a replica of, and no other.
    for id in 1..=3 {
        let dir = cluster.node(id).data_dir.clone();
        for topic in ["spread", "single"] {
            let expected: Vec<i32> = placement
                .iter()
                .filter(|((t, _), (_, replicas, _))| t == topic && replicas.contains(&id))
                .map(|((_, p), _)| *p)
                .collect();
            assert_eq!(
                hosted(&dir, topic),
                expected,
                "node {id}'s replicas of {topic}"
            );
        }
    }
    // Metadata reports each broker's rack.
    let mut client = Client::connect_port(ports[0]);
    let ResponseKind::Metadata(m) = client.call(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    ) else {
        panic!("Metadata answer expected");
    };
    let mut racks: Vec<(i32, String)> = m
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                b.rack.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    racks.sort();
    assert_eq!(
        racks,
        vec![(1, "a".into()), (2, "a".into()), (3, "b".into())]
    );

    // A partition asked of a broker that holds no replica of it answers
    // NOT_LEADER_OR_FOLLOWER, not UNKNOWN_TOPIC_OR_PARTITION: the client's metadata is
    // stale, the topic exists.
    let ((_, partition), (_, replicas, _)) =
        placement.iter().find(|((t, _), _)| t == "single").unwrap();
    let outsider = (1..=3).find(|id| !replicas.contains(id)).unwrap();
    let mut client = Client::connect_port(ports[outsider as usize - 1]);
    let answer = raw::produce(
        &mut client,
        raw::produce_request("single", *partition, 1, raw::batch(&[b"x"], 0).freeze()),
    );
    assert_eq!(answer.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    let answer = raw::produce(
        &mut client,
        raw::produce_request("single", 7, 1, raw::batch(&[b"x"], 0).freeze()),
    );
    assert_eq!(answer.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

/// Each partition of a topic as one node reports it: (leader, leader epoch, offline replicas).
fn leaderships(port: u16, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    let mut client = Client::connect_port(port);
    let request = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(raw::topic_name(topic))),
    ]));
    let ResponseKind::Metadata(m) =
        client.call(ApiKey::Metadata, 12, &RequestKind::Metadata(request))
    else {
        panic!("Metadata answer expected");
    };
    let mut partitions: Vec<_> = m.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                (
                    p.leader_id.0,
                    p.leader_epoch,
                    p.offline_replicas.iter().map(|b| b.0).collect(),
                ),
            )
        })
        .collect();
    partitions.sort_by_key(|(i, _)| *i);
    partitions.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn a_broker_that_stops_gives_up_its_leaderships_and_takes_them_back() {
    // A longer session than the other tests': a controlled shutdown waits half of it for
    // the controller, and a busy machine must not turn it into a plain stop.
    let mut cluster = Cluster::start(3, &[("broker.session.timeout.ms", "6000")]);
    let ports = ports(&cluster);
    let settled = eventually(
        "three brokers and one controller every node names",
        Duration::from_secs(15),
        || ports.iter().map(|p| view(*p)).collect::<Vec<_>>(),
        |v| {
            v.iter().all(|v| v.controller > 0 && v.brokers.len() == 3)
                && v.windows(2).all(|w| w[0].controller == w[1].controller)
        },
    );
    let controller = settled[0].controller;
    let controller_port = ports[controller as usize - 1];
    // Three partitions on three brokers: each broker leads one.
    assert_eq!(create(controller_port, "led", 3, 1), (0, None));
    let start = eventually(
        "every node has the topic",
        Duration::from_secs(10),
        || leaderships(controller_port, "led"),
        |p| p.len() == 3 && p.iter().all(|(l, e, _)| *l > 0 && *e == 0),
    );
    let index_of = |broker: i32| start.iter().position(|(l, _, _)| *l == broker).unwrap();
    let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();

    // SIGTERM: a controlled shutdown. The controller moves the broker's leaderships (no
    // other replica: no leader, the epoch bumped) before the broker exits, so the change
    // is there the moment it has exited, long before a session would time out.
    let stopped = others[0];
    let i = index_of(stopped);
    assert_eq!(cluster.node(stopped).stop(), Some(0));
    let shutdown_done = Instant::now();
    // The controller answered the shutdown after committing the move, so the change is
    // there at once (allowing for a moment's lag on a node that was not the controller
    // any more); a session timeout would take 6 s.
    eventually(
        "the stopped broker's partition has no leader",
        Duration::from_secs(3),
        || leaderships(controller_port, "led").get(i).cloned(),
        |p| *p == Some((-1, 1, vec![stopped])),
    );
    assert!(shutdown_done.elapsed() < Duration::from_secs(3));
    assert!(cluster
        .node(stopped)
        .log_text()
        .contains("the controller agreed to a controlled shutdown"));
    cluster.node(stopped).restart();
    eventually(
        "the restarted broker leads its partition again, in a new epoch",
        Duration::from_secs(20),
        || leaderships(controller_port, "led").get(i).cloned(),
        |p| *p == Some((stopped, 2, vec![])),
    );

    // kill -9: fenced after the session timeout, then the same.
    let killed = others[1];
    let k = index_of(killed);
    cluster.node(killed).kill9();
    eventually(
        "the killed broker's partition goes offline once it is fenced",
        Duration::from_secs(15),
        || leaderships(controller_port, "led").get(k).cloned(),
        |p| *p == Some((-1, 1, vec![killed])),
    );
    // Every node tells the same story.
    for port in [ports[controller as usize - 1], ports[stopped as usize - 1]] {
        eventually(
            "every node sees the partition offline",
            Duration::from_secs(10),
            || leaderships(port, "led").get(k).cloned(),
            |p| *p == Some((-1, 1, vec![killed])),
        );
    }
    cluster.node(killed).restart();
    eventually(
        "the killed broker leads its partition again",
        Duration::from_secs(20),
        || leaderships(controller_port, "led").get(k).cloned(),
        |p| *p == Some((killed, 2, vec![])),
    );
    // The controller's own partition was never touched.
    assert_eq!(
        leaderships(controller_port, "led")[index_of(controller)],
        (controller, 0, vec![])
    );
    // Clients that send their view of the leader epoch (librdkafka does, in Fetch and
    // ListOffsets) produce and read every partition in its new epoch.
    let bootstrap = cluster.bootstrap();
    let values: Vec<String> = (0..9).map(|n| format!("after-{n}")).collect();
    protocol_tests::clients::produce_round_robin(
        &bootstrap,
        "led",
        3,
        &values,
        "produce after failback",
    );
    let read = protocol_tests::clients::consume(&bootstrap, "led", 3, 9, Duration::from_secs(20));
    assert_eq!(read.len(), 9, "every partition read in its new epoch");
}

#[test]
fn killing_the_active_controller_elects_another_and_admin_requests_resume() {
    let mut cluster = Cluster::start(3, &[]);
    let ports = ports(&cluster);
    let mut timings = Vec::new();
    // WEIR_KILL_ROUNDS=20 for the measurement the README reports.
    let rounds: usize = std::env::var("WEIR_KILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        let before = eventually(
            "a controller and three brokers",
            Duration::from_secs(20),
            || view(ports[0]),
            |v| v.controller > 0 && v.brokers.len() == 3,
        );
        let leader = before.controller;
        let survivor = ports[(leader as usize) % 3];
        cluster.node(leader).kill9();
        let killed = Instant::now();
        let name = format!("after-kill-{round}");
        eventually(
            "an admin request succeeds again",
            Duration::from_secs(10),
            || create(survivor, &name, 1, 1),
            |r| r.0 == 0,
        );
        timings.push(killed.elapsed());
        let after = view(survivor);
        assert_ne!(
            after.controller, leader,
            "another node is the active controller"
        );
        // The killed node is fenced after its session, then comes back.
        eventually(
            "the killed broker is fenced",
            Duration::from_secs(10),
            || view(survivor),
            |v| !v.brokers.iter().any(|(id, _)| *id == leader),
        );
        cluster.node(leader).restart();
        eventually(
            "the restarted broker rejoins",
            Duration::from_secs(20),
            || view(survivor),
            |v| v.brokers.len() == 3,
        );
        eventually(
            "the restarted node has the topics",
            Duration::from_secs(10),
            || view(cluster.nodes[leader as usize - 1].port),
            |v| v.partitions.contains_key(&(name.clone(), 0)),
        );
    }
    timings.sort();
    eprintln!(
        "admin requests resumed after killing the active controller: p50 {:?}, max {:?} over {} kills",
        timings[timings.len() / 2],
        timings[timings.len() - 1],
        timings.len()
    );
    // Kafka's bar is 3 s; the slowest of a few may pay for this machine's noise.
    assert!(
        timings[timings.len() / 2] < Duration::from_secs(3),
        "{timings:?}"
    );
    assert!(
        timings[timings.len() - 1] < Duration::from_secs(6),
        "{timings:?}"
    );
}

#[test]
fn describe_quorum_and_describe_cluster_answer_from_every_node() {
    let cluster = Cluster::start(3, &[]);
    let ports = ports(&cluster);
    eventually(
        "three brokers",
        Duration::from_secs(15),
        || view(ports[0]),
        |v| v.brokers.len() == 3,
    );
    for port in &ports {
        let mut client = Client::connect_port(*port);
        let request = DescribeQuorumRequest::default().with_topics(vec![
            kafka_protocol::messages::describe_quorum_request::TopicData::default()
                .with_topic_name(raw::topic_name("__cluster_metadata"))
                .with_partitions(vec![
                    kafka_protocol::messages::describe_quorum_request::PartitionData::default(),
                ]),
        ]);
        let ResponseKind::DescribeQuorum(q) = client.call(
            ApiKey::DescribeQuorum,
            2,
            &RequestKind::DescribeQuorum(request),
        ) else {
            panic!("DescribeQuorum answer expected");
        };
        let p = &q.topics[0].partitions[0];
        assert_eq!(
            p.error_code, 0,
            "answered by the active controller, forwarded if need be"
        );
        assert!(p.leader_id.0 > 0 && p.high_watermark > 0);
        assert_eq!(p.current_voters.len(), 3);
        let leader = p
            .current_voters
            .iter()
            .find(|v| v.replica_id == p.leader_id)
            .expect("the leader is a voter");
        assert!(
            p.high_watermark <= leader.log_end_offset,
            "the high watermark is an offset at most the leader's log end: {p:?}"
        );
        assert_eq!(q.nodes.len(), 3);
        let ResponseKind::DescribeCluster(c) = client.call(
            ApiKey::DescribeCluster,
            1,
            &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ) else {
            panic!("DescribeCluster answer expected");
        };
        assert_eq!(c.cluster_id.as_str(), cluster.cluster_id);
        assert_eq!(c.brokers.len(), 3);
        assert_eq!(c.controller_id, p.leader_id);
    }
    // Kafka's own tools, when installed.
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-tool");
    let libs = std::process::Command::new(&tool)
        .arg("--libs")
        .output()
        .unwrap();
    let libs = std::path::PathBuf::from(String::from_utf8_lossy(&libs.stdout).trim());
    if !libs.join(".complete").exists() {
        eprintln!("skipped kafka-metadata-quorum.sh: Kafka's jars are not installed");
        return;
    }
    let bootstrap = format!("127.0.0.1:{}", ports[1]);
    // One of Kafka's tools against a node that may not be the controller: its output.
    let run = |script: &str, args: &[&str]| {
        let out = std::process::Command::new(&tool)
            .arg(script)
            .args(["--bootstrap-server", &bootstrap])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{script} {args:?}: {text}");
        text
    };
    // The quickstart's topic commands.
    let topics = |args: &[&str]| run("kafka-topics.sh", args);
    let created = topics(&[
        "--create",
        "--topic",
        "quickstart",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    assert!(created.contains("Created topic quickstart."), "{created}");
    let described = topics(&["--describe", "--topic", "quickstart"]);
    assert!(
        described.contains("PartitionCount: 3\tReplicationFactor: 3"),
        "{described}"
    );
    // Placement starts at a broker the topic id picks; then leaders follow the stripe.
    let mut leaders = Vec::new();
    for partition in 0..3 {
        let prefix = format!("Partition: {partition}\tLeader: ");
        let line = described
            .lines()
            .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("partition {partition} in {described}"));
        let fields: Vec<&str> = line.split('\t').collect();
        let leader = fields[0];
        let replicas = fields[1].strip_prefix("Replicas: ").unwrap();
        let mut distinct: Vec<&str> = replicas.split(',').collect();
        distinct.sort();
        assert_eq!(distinct, ["1", "2", "3"], "{line}");
        assert!(
            replicas.starts_with(leader),
            "{line}: the first replica leads"
        );
        assert_eq!(fields[2], format!("Isr: {leader}"), "{line}");
        leaders.push(leader.parse::<i32>().unwrap());
    }
    assert_eq!(
        leaders,
        (0..3)
            .map(|i| (leaders[0] - 1 + i) % 3 + 1)
            .collect::<Vec<_>>(),
        "striped leaders"
    );
    for args in [
        &["describe", "--status"][..],
        &["describe", "--replication"][..],
    ] {
        let text = run("kafka-metadata-quorum.sh", args);
        if args[1] == "--status" {
            assert!(
                text.contains(&format!("ClusterId:              {}", cluster.cluster_id)),
                "{text}"
            );
            assert!(
                text.contains("CurrentVoters:") && text.contains("\"id\": 3"),
                "{text}"
            );
        } else {
            assert_eq!(
                text.lines()
                    .filter(|l| l.contains("Leader") || l.contains("Follower"))
                    .count(),
                3,
                "{text}"
            );
        }
    }
}

#[test]
fn nodes_that_do_not_belong_are_refused() {
    let mut cluster = Cluster::start(3, &[]);
    let ports = ports(&cluster);
    eventually(
        "three brokers",
        Duration::from_secs(15),
        || view(ports[0]),
        |v| v.brokers.len() == 3,
    );
    let voters = cluster.voters();

    // A fourth node of another cluster, claiming to be voter 3 elsewhere: its messages are
    // refused and the cluster keeps its three brokers.
    let temp = tempfile::tempdir().unwrap();
    let port = free_port();
    let controller = free_port();
    let foreign_voters = voters.replace(
        &format!("3@127.0.0.1:{}", cluster.controller_ports[2]),
        &format!("3@127.0.0.1:{controller}"),
    );
    let listeners = format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}");
    let mut settings: Vec<(&str, &str)> = vec![
        ("node.id", "3"),
        ("listeners", &listeners),
        ("controller.listener.names", "CONTROLLER"),
        ("controller.quorum.voters", &foreign_voters),
    ];
    settings.extend_from_slice(Cluster::TEST_SETTINGS);
    let foreign = Broker::start_on(
        port,
        &settings,
        &[("CLUSTER_ID", "AAAAAAAAAAAAAAAAAAAAAA")],
        temp.path(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let refusals: usize = cluster
        .nodes
        .iter()
        .map(|n| {
            n.log_text()
                .matches("refusing a quorum message from another cluster")
                .count()
        })
        .sum();
    assert!(refusals > 0, "the foreign node's votes are refused");
    assert_eq!(view(ports[0]).brokers.len(), 3);
    drop(foreign);

    // A node restarted with other voters than its log records refuses to start.
    cluster.node(2).stop();
    let mut node2 = std::process::Command::new(protocol_tests::weir_bin());
    node2.args([
        "--override",
        &format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports[1], cluster.controller_ports[1]
        ),
        "--override",
        "node.id=2",
        "--override",
        "controller.listener.names=CONTROLLER",
        "--override",
        &format!("controller.quorum.voters={}", voters.replace("3@", "9@")),
        "--override",
        &format!("log.dirs={}", cluster.nodes[1].data_dir.display()),
    ]);
    let out = node2.output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("but this node's metadata log records the voters"),
        "{said}"
    );
}

/// Sets a topic config on any node (forwarded to the active controller): one metadata commit.
fn set_topic_config(port: u16, topic: &str, key: &str, value: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.to_string())))]),
    ]);
    let ResponseKind::IncrementalAlterConfigs(r) = Client::connect_port(port).call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &RequestKind::IncrementalAlterConfigs(request),
    ) else {
        panic!("IncrementalAlterConfigs answer expected");
    };
    r.responses[0].error_code
}

/// A topic config as one node describes it.
fn topic_config(port: u16, topic: &str, key: &str) -> Option<String> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))]);
    let ResponseKind::DescribeConfigs(d) = Client::connect_port(port).call(
        ApiKey::DescribeConfigs,
        4,
        &RequestKind::DescribeConfigs(request),
    ) else {
        panic!("DescribeConfigs answer expected");
    };
    d.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

#[test]
fn a_node_that_missed_more_than_the_kept_log_catches_up_from_a_snapshot() {
    // Snapshots every 8 KiB of records; after each, the log before it is purged but for
    // 1,000 batches. A node down for more than that must be sent a snapshot.
    let mut cluster = Cluster::start(
        3,
        &[("metadata.log.max.record.bytes.between.snapshots", "8192")],
    );
    let ports = ports(&cluster);
    let before = eventually(
        "a controller and three brokers",
        Duration::from_secs(15),
        || view(ports[0]),
        |v| v.controller > 0 && v.brokers.len() == 3,
    );
    let down = (1..=3).find(|id| *id != before.controller).unwrap();
    let up = (1..=3).find(|id| *id != down).unwrap();
    let port_up = ports[up as usize - 1];
    assert_eq!(create(port_up, "kept", 1, 1), (0, None));
    assert_eq!(create(port_up, "deleted-while-down", 1, 1), (0, None));
    eventually(
        "the node to stop has both topics",
        Duration::from_secs(10),
        || view(ports[down as usize - 1]).partitions.len(),
        |n| *n == 2,
    );
    cluster.node(down).stop();

    let started = Instant::now();
    let commits = 1_200;
    for i in 0..commits {
        assert_eq!(
            set_topic_config(
                port_up,
                "kept",
                "retention.ms",
                &(1_000_000 + i).to_string()
            ),
            0
        );
    }
    println!("{commits} metadata commits in {:?}", started.elapsed());
    // The leader purges what a replication to the stopped node may still be sending only
    // once that attempt has failed: commit on until it has purged past what that node has.
    let leader = before.controller;
    let purged_past = |log: &str, index: u64| {
        log.lines()
            .filter_map(|l| l.split("up_to=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .any(|up_to| up_to > index)
    };
    let mut i = commits;
    eventually(
        "the leader purged its log past the stopped node",
        Duration::from_secs(20),
        || {
            i += 1;
            let value = (1_000_000 + i).to_string();
            assert_eq!(set_topic_config(port_up, "kept", "retention.ms", &value), 0);
            std::thread::sleep(Duration::from_millis(20));
            purged_past(&cluster.node(leader).log_text(), 100)
        },
        |purged| *purged,
    );
    let last = 1_000_000 + i;
    assert_eq!(create(port_up, "created-while-down", 2, 1), (0, None));
    let mut client = Client::connect_port(port_up);
    assert_eq!(raw::delete_topic(&mut client, "deleted-while-down"), 0);
    let expected = eventually(
        "the live nodes settle",
        Duration::from_secs(10),
        || view(port_up),
        |v| v.partitions.len() == 3,
    );

    cluster.node(down).restart();
    let port_down = ports[down as usize - 1];
    eventually(
        "the restarted node has caught up",
        Duration::from_secs(20),
        || {
            (
                view(port_down).partitions,
                topic_config(port_down, "kept", "retention.ms"),
            )
        },
        |(partitions, retention)| {
            *partitions == expected.partitions
                && retention.as_deref() == Some(&last.to_string()[..])
        },
    );
    let log = cluster.node(down).log_text();
    assert!(
        log.contains("installed a metadata snapshot"),
        "caught up from a snapshot:\n{log}"
    );
}

#[test]
fn a_controller_cut_off_from_its_quorum_decides_nothing() {
    let mut cluster = Cluster::start(3, &[]);
    let ports = ports(&cluster);
    // Every node names the same active controller: it is the leader, not a stale view.
    let views = eventually(
        "three brokers and one controller every node names",
        Duration::from_secs(15),
        || ports.iter().map(|p| view(*p)).collect::<Vec<_>>(),
        |v| {
            v.iter().all(|v| v.controller > 0 && v.brokers.len() == 3)
                && v.windows(2).all(|w| w[0].controller == w[1].controller)
        },
    );
    let leader = views[0].controller;
    // The two other voters stop answering (SIGSTOP): the old leader is alone.
    let others: Vec<i32> = (1..=3).filter(|id| *id != leader).collect();
    for id in &others {
        cluster.node(*id).signal("STOP");
    }
    let port = ports[leader as usize - 1];
    // NOT_CONTROLLER, or REQUEST_TIMED_OUT if it had just lost the leadership and
    // forwarded the request: never a decision.
    let answer = std::panic::catch_unwind(|| create(port, "while-alone", 1, 1));
    if !matches!(answer, Ok((41 | 7, _))) {
        for id in 1..=3 {
            eprintln!("---- node {id}\n{}", cluster.node(id).log_text());
        }
        panic!("NOT_CONTROLLER expected, not a decision without a quorum: {answer:?}");
    }
    let refused = matches!(answer, Ok((41, _)));
    // Cut off for longer than 1.5 election timeouts, it no longer names itself the
    // controller (Kafka's check-quorum), and answers at once.
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(
        view(port).controller,
        -1,
        "a node cut off names no controller"
    );
    let asked = Instant::now();
    assert_eq!(create(port, "still-alone", 1, 1).0, 41);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    for id in &others {
        cluster.node(*id).signal("CONT");
    }
    eventually(
        "the quorum decides again",
        Duration::from_secs(15),
        || create(ports[others[0] as usize - 1], "after-cut", 1, 1),
        |r| r.0 == 0,
    );
    let settled = eventually(
        "every node agrees",
        Duration::from_secs(10),
        || view(ports[0]),
        |v| v.partitions.contains_key(&("after-cut".to_string(), 0)),
    );
    // A forwarded request that timed out may still be decided by the controller it
    // reached; one refused with NOT_CONTROLLER never is.
    let committed = |name: &str| settled.partitions.contains_key(&(name.to_string(), 0));
    assert!(
        !committed("still-alone") && (!refused || !committed("while-alone")),
        "nothing the lone node refused was committed"
    );
}

/// The active controller as DescribeQuorum reports it, asked of any node.
fn quorum_leader(port: u16) -> i32 {
    let request = DescribeQuorumRequest::default().with_topics(vec![
        kafka_protocol::messages::describe_quorum_request::TopicData::default()
            .with_topic_name(raw::topic_name("__cluster_metadata"))
            .with_partitions(vec![
                kafka_protocol::messages::describe_quorum_request::PartitionData::default(),
            ]),
    ]);
    let ResponseKind::DescribeQuorum(q) = Client::connect_port(port).call(
        ApiKey::DescribeQuorum,
        2,
        &RequestKind::DescribeQuorum(request),
    ) else {
        panic!("DescribeQuorum answer expected");
    };
    q.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.leader_id.0)
}

#[test]
fn controller_only_and_broker_only_nodes_form_kafkas_isolated_mode() {
    // Kafka's isolated mode: three controllers (nodes 1-3) that are not brokers, two
    // brokers (4, 5) that are not voters and follow the metadata log the voters commit;
    // broker 5 knows the controllers from controller.quorum.bootstrap.servers only.
    let mut cluster = Cluster::start_isolated(3, 2, &[]);
    let brokers: Vec<u16> = cluster.nodes[3..].iter().map(|n| n.port).collect();
    for port in &brokers {
        eventually(
            "the two brokers registered, and a broker named as controller",
            Duration::from_secs(15),
            || view(*port),
            |v| {
                v.brokers.iter().map(|b| b.0).collect::<Vec<_>>() == [4, 5]
                    && [4, 5].contains(&v.controller)
            },
        );
    }
    // Admin requests to a broker reach the active controller; replicas go to brokers only.
    assert_eq!(create(brokers[1], "isolated", 4, 2), (0, None));
    let settled = eventually(
        "both brokers see the topic",
        Duration::from_secs(10),
        || brokers.iter().map(|p| view(*p)).collect::<Vec<_>>(),
        |v| v.iter().all(|v| v.partitions.len() == 4) && v[0].partitions == v[1].partitions,
    );
    for ((topic, partition), (_, replicas, _)) in &settled[0].partitions {
        let mut sorted = replicas.clone();
        sorted.sort();
        assert_eq!(sorted, [4, 5], "{topic}-{partition}");
    }
    assert_eq!(
        create(brokers[0], "too-wide", 1, 3).0,
        38,
        "controllers are not brokers: INVALID_REPLICATION_FACTOR"
    );
    // Clients produce and consume through the brokers.
    let bootstrap = format!("127.0.0.1:{},127.0.0.1:{}", brokers[0], brokers[1]);
    let send = |round: &str| {
        let values: Vec<String> = (0..8).map(|n| format!("{round}-{n}")).collect();
        protocol_tests::clients::produce_round_robin(&bootstrap, "isolated", 4, &values, "produce");
    };
    send("first");
    let read =
        protocol_tests::clients::consume(&bootstrap, "isolated", 4, 8, Duration::from_secs(20));
    assert_eq!(read.len(), 8);

    // kill -9 of the active controller: the brokers follow the new one, and admin
    // requests through them succeed again.
    let leader = quorum_leader(brokers[0]);
    assert!((1..=3).contains(&leader), "a controller leads: {leader}");
    cluster.node(leader).kill9();
    eventually(
        "an admin request through a broker succeeds again",
        Duration::from_secs(15),
        || create(brokers[0], "after-failover", 1, 2).0,
        |code| *code == 0 || *code == 36,
    );
    eventually(
        "the broker that bootstrapped names the new controller",
        Duration::from_secs(10),
        || quorum_leader(brokers[1]),
        |l| *l != leader && (1..=3).contains(l),
    );

    // A broker that stops heartbeating is fenced by the controllers, which are not brokers.
    cluster.node(4).kill9();
    eventually(
        "the killed broker is fenced",
        Duration::from_secs(10),
        || view(brokers[1]).brokers,
        |b| b.iter().map(|b| b.0).collect::<Vec<_>>() == [5],
    );
    // A broker-only node keeps nothing of the log: restarted, it fetches the image again.
    cluster.node(4).restart();
    eventually(
        "the restarted broker has every topic and both brokers",
        Duration::from_secs(20),
        || view(brokers[0]),
        |v| {
            v.partitions.len() == 5
                && v.partitions
                    .contains_key(&("after-failover".to_string(), 0))
                && v.brokers.len() == 2
        },
    );
    send("second");
    let read =
        protocol_tests::clients::consume(&bootstrap, "isolated", 4, 16, Duration::from_secs(20));
    assert_eq!(
        read.len(),
        16,
        "the data of broker 4's partitions is still there"
    );
}
