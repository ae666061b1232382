//! Bad input closes its own connection or gets a Kafka error; the broker and other
//! clients carry on and nothing stored is damaged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, ProduceRequest, ProduceResponse, RequestKind, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use protocol_tests::clients::{consume, create_topic, producer};
use protocol_tests::{raw, Broker};
use rdkafka::producer::FutureRecord;

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the peer closes; true if it closed (rather than timing out).
fn closed_by_peer(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn read_response(stream: &mut TcpStream) -> bytes::Bytes {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    bytes::Bytes::from(body)
}

/// A valid uncompressed batch of one record, "abc".
fn batch() -> BytesMut {
    raw::batch(&[b"abc"], 1000)
}

fn produce_request(topic: &str, records: BytesMut) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.freeze()))])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connections_do_not_disturb_a_working_client() {
    let max: i32 = 1_000_000;
    let mut broker = Broker::start(&[("socket.request.max.bytes", &max.to_string())]);
    create_topic(&broker.bootstrap(), "steady", 1, &[]).await;
    create_topic(&broker.bootstrap(), "target", 1, &[]).await;

    // A well-behaved client keeps producing throughout.
    let bootstrap = broker.bootstrap();
    let steady = tokio::spawn(async move {
        let producer = producer(&bootstrap, &[("acks", "all")]);
        for i in 0..400 {
            producer
                .send(
                    FutureRecord::<(), _>::to("steady").payload(&format!("{i}")),
                    Duration::from_secs(20),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("steady producer keeps working");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    // Garbage bytes.
    let mut s = connect(&broker);
    s.write_all(&[
        0x00, 0x00, 0x00, 0x10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ])
    .unwrap();
    assert!(closed_by_peer(s), "garbage frame closes the connection");

    // A truncated frame: the length promises more than ever arrives.
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 100, 0, 18, 0, 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_peer(s), "truncated frame closes the connection");

    // A length above socket.request.max.bytes.
    let mut s = connect(&broker);
    s.write_all(&(max + 1i32).to_be_bytes()).unwrap();
    assert!(closed_by_peer(s), "oversized frame closes the connection");

    // A negative length.
    let mut s = connect(&broker);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed_by_peer(s), "negative length closes the connection");

    // An unknown API key.
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 10, 0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(closed_by_peer(s), "unknown api key closes the connection");

    // An unsupported Metadata version.
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(
        closed_by_peer(s),
        "unsupported version closes the connection"
    );

    // A Produce version above the table's.
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 10, 0, 0, 0, 14, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(closed_by_peer(s), "produce v14 closes the connection");

    // Produce v2 (served for old clients, KIP-896 removed it from Kafka 4) without a body.
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(
        closed_by_peer(s),
        "a truncated produce v2 closes the connection"
    );

    // A future ApiVersions gets a v0 UNSUPPORTED_VERSION answer with our versions (KIP-511).
    let mut s = connect(&broker);
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff])
        .unwrap();
    let mut response = read_response(&mut s);
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let versions = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(versions.error_code, 35);
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == 0 && k.min_version == 0));

    // A batch with a wrong CRC gets CORRUPT_MESSAGE and appends nothing; a good one appends.
    let mut s = connect(&broker);
    let mut corrupt = batch();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    s.write_all(&raw::request_frame(
        ApiKey::Produce,
        9,
        42,
        &RequestKind::Produce(produce_request("target", corrupt)),
    ))
    .unwrap();
    let mut response = read_response(&mut s);
    ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(9)).unwrap();
    let produced = ProduceResponse::decode(&mut response, 9).unwrap();
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    // A batch whose record count lies.
    let mut lying = batch();
    lying[57..61].copy_from_slice(&2i32.to_be_bytes());
    raw::reseal(&mut lying);
    s.write_all(&raw::request_frame(
        ApiKey::Produce,
        9,
        42,
        &RequestKind::Produce(produce_request("target", lying)),
    ))
    .unwrap();
    let mut response = read_response(&mut s);
    ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(9)).unwrap();
    let produced = ProduceResponse::decode(&mut response, 9).unwrap();
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, 87,
        "INVALID_RECORD"
    );
    s.write_all(&raw::request_frame(
        ApiKey::Produce,
        9,
        42,
        &RequestKind::Produce(produce_request("target", batch())),
    ))
    .unwrap();
    let mut response = read_response(&mut s);
    ResponseHeader::decode(&mut response, ApiKey::Produce.response_header_version(9)).unwrap();
    let produced = ProduceResponse::decode(&mut response, 9).unwrap();
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        produced.responses[0].partition_responses[0].base_offset, 0,
        "the corrupt batches took no offsets"
    );

    steady.await.unwrap();
    assert!(broker.is_running());
    let target = consume(&broker.bootstrap(), "target", 1, 2, Duration::from_secs(3));
    assert_eq!(target.len(), 1);
    assert_eq!(target[0].value.as_deref(), Some(&b"abc"[..]));
    let steady = consume(
        &broker.bootstrap(),
        "steady",
        1,
        400,
        Duration::from_secs(30),
    );
    assert_eq!(steady.len(), 400);
    let log = broker.log_text();
    assert!(
        log.contains("closing connection"),
        "each bad connection is logged:\n{log}"
    );
}

#[test]
fn max_connections_holds_new_connections_until_one_closes() {
    let broker = Broker::start(&[("max.connections", "2")]);
    let api_versions = |s: &mut TcpStream| {
        s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff])
            .unwrap();
        read_response(s)
    };
    let mut first = connect(&broker);
    let mut second = connect(&broker);
    api_versions(&mut first);
    api_versions(&mut second);
    let mut third = connect(&broker);
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    third
        .write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff])
        .unwrap();
    let mut buf = [0u8; 4];
    assert!(
        third.read_exact(&mut buf).is_err(),
        "the third connection waits while two are open"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    third
        .read_exact(&mut buf)
        .expect("served once a slot is free");
    api_versions(&mut second);
}
