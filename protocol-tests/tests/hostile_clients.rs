//! Slow and hostile clients against the real binary: half frames that stall, too many
//! connections from one address, thousands of idle connections, hundreds of concurrent
//! producers, and a client that never reads its responses. Each must leave the broker
//! serving others, within a stated memory bound.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use protocol_tests::raw::{self, request_frame, topic_name, Client};
use protocol_tests::Broker;

/// Peak broker RSS allowed under each load below. Idle the broker takes about 16 MB; 5,000 connections add about 62 MB.
const RSS_BOUND_KIB: u64 = 160 * 1024;

fn api_versions_frame() -> Vec<u8> {
    request_frame(
        ApiKey::ApiVersions,
        3,
        1,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    )
}

/// Whether the broker closed this connection within `within` (EOF or reset on read).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Sends ApiVersions and reads its whole response.
fn api_versions_round_trip(stream: &mut TcpStream) {
    stream.write_all(&api_versions_frame()).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
}

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn create(client: &mut Client, topic: &str, partitions: i32) {
    raw::create_topic(client, topic, partitions, &[]);
}

fn produce_request(topic: &str, partition: i32, records: Bytes) -> RequestKind {
    RequestKind::Produce(raw::produce_request(topic, partition, 1, records))
}

#[test]
fn stalled_half_frames_are_closed_after_connections_max_idle_ms() {
    let broker = Broker::start(&[("connections.max.idle.ms", "1000")]);
    // Half a length prefix, then nothing.
    let mut stalled = connect(&broker);
    stalled.write_all(&[0, 0]).unwrap();
    // Half a request body, then nothing.
    let mut half_body = connect(&broker);
    let frame = api_versions_frame();
    half_body.write_all(&frame[..frame.len() / 2]).unwrap();
    // A client that talks every 300 ms is never idle.
    let mut busy = connect(&broker);
    // A long poll that outlasts the idle limit: waiting for a response is not idleness.
    let mut client = Client::connect(&broker);
    create(&mut client, "idle", 1);
    let mut polling = connect(&broker);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(2500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("idle"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    polling
        .write_all(&request_frame(
            ApiKey::Fetch,
            12,
            7,
            &RequestKind::Fetch(fetch),
        ))
        .unwrap();
    let started = Instant::now();
    for _ in 0..8 {
        api_versions_round_trip(&mut busy);
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(client);
    let mut len = [0u8; 4];
    polling.read_exact(&mut len).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(2400),
        "the long poll was answered"
    );

    assert!(
        closed_within(&mut stalled, Duration::from_secs(2)),
        "half prefix closed"
    );
    assert!(
        closed_within(&mut half_body, Duration::from_secs(2)),
        "half body closed"
    );
    api_versions_round_trip(&mut busy);
}

#[test]
fn max_connections_per_ip_closes_the_connection_above_it() {
    let broker = Broker::start(&[("max.connections.per.ip", "3")]);
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(&broker)).collect();
    for stream in &mut open {
        api_versions_round_trip(stream);
    }
    let mut fourth = connect(&broker);
    let _ = fourth.write_all(&api_versions_frame());
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5)),
        "the fourth is closed"
    );
    let rejected = "Rejected connection from 127.0.0.1, address already has the configured maximum of 3 connections.";
    let deadline = Instant::now() + Duration::from_secs(5);
    while !broker.log_text().contains(rejected) {
        assert!(Instant::now() < deadline, "no rejection logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Closing one gives its place back.
    let gone = open.pop().unwrap();
    gone.shutdown(Shutdown::Both).unwrap();
    drop(gone);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect(&broker);
        if again.write_all(&api_versions_frame()).is_ok()
            && !closed_within(&mut again, Duration::from_millis(300))
        {
            api_versions_round_trip(&mut again);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never given back"
        );
    }
    for stream in &mut open {
        api_versions_round_trip(stream);
    }
}

#[test]
fn max_connections_per_ip_changes_live() {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start(&[("max.connections.per.ip", "2")]);
    let mut admin = Client::connect(&broker);
    let mut other = connect(&broker);
    api_versions_round_trip(&mut other);
    let mut third = connect(&broker);
    let _ = third.write_all(&api_versions_frame());
    assert!(
        closed_within(&mut third, Duration::from_secs(5)),
        "the third is closed"
    );

    // kafka-configs.sh --alter --entity-type brokers --entity-name 1 --add-config ...
    let alter = |client: &mut Client, value: &str| {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("1"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("max.connections.per.ip"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_string())))]),
        ]);
        let ResponseKind::IncrementalAlterConfigs(answer) = client.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &RequestKind::IncrementalAlterConfigs(request),
        ) else {
            panic!("IncrementalAlterConfigs answer expected");
        };
        answer.responses[0].error_code
    };
    assert_eq!(alter(&mut admin, "-1"), 40, "INVALID_CONFIG below 0");
    assert_eq!(alter(&mut admin, "3"), 0);
    let mut third = connect(&broker);
    api_versions_round_trip(&mut third);
    let mut fourth = connect(&broker);
    let _ = fourth.write_all(&api_versions_frame());
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5)),
        "the fourth is closed"
    );
}

#[test]
fn thousands_of_idle_connections_and_hundreds_of_producers_stay_within_memory() {
    const IDLE: usize = 5_000;
    const PRODUCERS: usize = 200;
    let broker = Broker::start(&[]);
    let (idle_rss, _) = broker.memory_kib();
    let mut idle: Vec<TcpStream> = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut stream = connect(&broker);
        api_versions_round_trip(&mut stream);
        idle.push(stream);
    }
    let (with_connections, _) = broker.memory_kib();

    let mut client = Client::connect(&broker);
    create(&mut client, "load", 8);
    let port = broker.port;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut client = Client::connect_port(port);
                let value = vec![b'p'; 1000];
                for _ in 0..25 {
                    let records = raw::batch(&[&value[..]; 10], 1000).freeze();
                    let ResponseKind::Produce(r) = client.call(
                        ApiKey::Produce,
                        9,
                        &produce_request("load", (i % 8) as i32, records),
                    ) else {
                        panic!()
                    };
                    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let (after, peak) = broker.memory_kib();
    println!(
        "RSS: idle {idle_rss} KiB, with {IDLE} connections {with_connections} KiB, after {PRODUCERS} producers {after} KiB, peak {peak} KiB"
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB above {RSS_BOUND_KIB} KiB"
    );
    // Every idle connection is still served.
    for stream in idle.iter_mut().step_by(500) {
        api_versions_round_trip(stream);
    }
}

#[test]
fn a_client_that_never_reads_does_not_grow_broker_memory() {
    let broker = Broker::start(&[("connections.max.idle.ms", "3000")]);
    let mut client = Client::connect(&broker);
    create(&mut client, "unread", 1);
    let value = vec![b'u'; 1000];
    for _ in 0..100 {
        let records = raw::batch(&[&value[..]; 10], 1000).freeze();
        client.call(ApiKey::Produce, 9, &produce_request("unread", 0, records));
    }
    // One fetch answer is about 1 MB; the client asks for 200,000 of them and reads none.
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("unread"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let frame = request_frame(ApiKey::Fetch, 12, 1, &RequestKind::Fetch(fetch));
    let mut greedy = connect(&broker);
    greedy
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut sent = 0;
    for _ in 0..200_000 {
        if greedy.write_all(&frame).is_err() {
            break; // the broker stopped reading: backpressure
        }
        sent += 1;
    }
    std::thread::sleep(Duration::from_secs(1));
    let (rss, peak) = broker.memory_kib();
    println!("a client that never reads: {sent} fetches sent, RSS {rss} KiB, peak {peak} KiB");
    assert!(
        sent < 200_000,
        "the broker kept reading requests it could not answer"
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB above {RSS_BOUND_KIB} KiB"
    );
    // Others are served meanwhile.
    let mut other = connect(&broker);
    api_versions_round_trip(&mut other);
    // A response that cannot be written for connections.max.idle.ms closes the connection.
    assert!(
        closed_within(&mut greedy, Duration::from_secs(30)),
        "a client that never reads keeps its connection"
    );
}

/// Array counts are checked against the bytes that follow before anything is sized by them
/// (Kafka's rule, KAFKA-14063). Fuzzing found that kafka-protocol 0.18 allocated
/// `count * size_of(element)` first: the first frame below made the broker abort with
/// "memory allocation of 154618822584 bytes failed" (third_party/kafka-protocol).
#[test]
fn array_counts_longer_than_the_frame_close_the_connection() {
    let mut broker = Broker::start(&[]);
    // Request header v1 (api key, version, correlation id, null client id), or v2 with an
    // empty tag buffer for flexible versions.
    let header = |api: u16, version: u16, flexible: bool| {
        let mut h = [api.to_be_bytes(), version.to_be_bytes()].concat();
        h.extend_from_slice(&[0, 0, 0, 1, 0xff, 0xff]);
        if flexible {
            h.push(0);
        }
        h
    };
    const HUGE_COMPACT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f]; // unsigned varint 2^32-1
    let metadata_v0 = [header(3, 0, false), i32::MAX.to_be_bytes().to_vec()].concat();
    let metadata_v12 = [header(3, 12, true), HUGE_COMPACT.to_vec()].concat();
    let produce_v9 = [
        header(0, 9, true),
        vec![0],                        // transactional_id: null
        1i16.to_be_bytes().to_vec(),    // acks
        5000i32.to_be_bytes().to_vec(), // timeout_ms
        HUGE_COMPACT.to_vec(),          // topic_data
    ]
    .concat();
    let fetch_v4 = [
        header(1, 4, false),
        (-1i32).to_be_bytes().to_vec(), // replica_id
        0i32.to_be_bytes().to_vec(),    // max_wait_ms
        1i32.to_be_bytes().to_vec(),    // min_bytes
        1i32.to_be_bytes().to_vec(),    // max_bytes
        vec![0],                        // isolation_level
        1i32.to_be_bytes().to_vec(),    // one topic...
        vec![0, 1, b't'],
        i32::MAX.to_be_bytes().to_vec(), // ...whose partitions claim 2^31-1 entries
    ]
    .concat();
    let frames = [
        ("Metadata v0, topics 2^31-1", metadata_v0),
        ("Metadata v12, compact topics 2^32-2", metadata_v12),
        ("Produce v9, compact topic_data 2^32-2", produce_v9),
        ("Fetch v4, partitions 2^31-1", fetch_v4),
    ];
    for (what, body) in frames {
        let mut stream = connect(&broker);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        stream.write_all(&frame).unwrap();
        assert!(
            closed_within(&mut stream, Duration::from_secs(10)),
            "{what}: the connection is closed"
        );
        assert!(broker.is_running(), "{what}: the broker is still running");
        let mut other = connect(&broker);
        api_versions_round_trip(&mut other);
    }
    // The log is read from the broker's stderr by another thread: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.log_text().matches("bytes remaining").count() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = broker.log_text();
    assert!(
        log.matches("bytes remaining").count() >= 4,
        "each refusal is logged with its cause:\n{log}"
    );
    let (_, peak) = broker.memory_kib();
    assert!(
        peak < RSS_BOUND_KIB,
        "no large allocation was made: peak {peak} KiB"
    );
}
