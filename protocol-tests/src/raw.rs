//! A raw Kafka protocol client over a blocking socket, for tests that need exact requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::Broker;

/// A length-prefixed request frame, as a client writes it.
pub fn request_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &RequestKind,
) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("protocol-tests")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    frame
}

pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(broker: &Broker) -> Client {
        Client::connect_port(broker.port)
    }

    /// Connects to a broker on 127.0.0.1 by port (for threads that do not own the broker).
    pub fn connect_port(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            // Longer than a broker's own bound on forwarding to the controller (10 s).
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Client {
            stream,
            correlation: 0,
        }
    }

    /// Sends one request and decodes its response at the same version.
    pub fn call(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> ResponseKind {
        self.correlation += 1;
        let frame = request_frame(key, version, self.correlation, body);
        self.stream.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: no response ({e})"));
        let mut payload = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut payload).unwrap();
        let mut payload = Bytes::from(payload);
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut payload, header_version).unwrap();
        assert_eq!(
            header.correlation_id, self.correlation,
            "{key:?} v{version}"
        );
        let response = ResponseKind::decode(key, &mut payload, version)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: response does not decode: {e}"));
        assert!(payload.is_empty(), "{key:?} v{version}: trailing bytes");
        response
    }
}

/// An uncompressed v2 batch of keyless records with these values; record `i` has the
/// timestamp `base_ts + i`. The CRC is correct; tests corrupt it on purpose.
pub fn batch(values: &[&[u8]], base_ts: i64) -> BytesMut {
    use bytes::BufMut;
    fn varint(out: &mut BytesMut, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.put_u8(z as u8 | 0x80);
            z >>= 7;
        }
        out.put_u8(z as u8);
    }
    let mut records = BytesMut::new();
    for (i, value) in values.iter().enumerate() {
        let mut record = BytesMut::new();
        record.put_u8(0);
        varint(&mut record, i as i64);
        varint(&mut record, i as i64);
        varint(&mut record, -1);
        varint(&mut record, value.len() as i64);
        record.put_slice(value);
        varint(&mut record, 0);
        varint(&mut records, record.len() as i64);
        records.put_slice(&record);
    }
    let count = values.len() as i32;
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32(49 + records.len() as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(count - 1);
    b.put_i64(base_ts);
    b.put_i64(base_ts + count as i64 - 1);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.put_slice(&records);
    reseal(&mut b);
    b
}

/// The records of uncompressed v2 batches as stored: (base offset, values) per batch.
/// Panics if a batch's CRC32C is wrong or its records do not parse.
pub fn parse_batches(mut bytes: &[u8]) -> Vec<(i64, Vec<Vec<u8>>)> {
    fn varint(b: &mut &[u8]) -> i64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return ((value >> 1) as i64) ^ -((value & 1) as i64);
            }
            shift += 7;
        }
    }
    let mut batches = Vec::new();
    while bytes.len() >= 61 {
        let base = i64::from_be_bytes(bytes[0..8].try_into().unwrap());
        let length = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        if bytes.len() < 12 + length {
            break; // a partial batch at the end of a fetch
        }
        let batch = &bytes[..12 + length];
        let crc = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        assert_eq!(
            crc32c::crc32c(&batch[21..]),
            crc,
            "batch at {base}: bad CRC"
        );
        assert_eq!(
            batch[22] & 0x07,
            0,
            "only uncompressed batches are parsed here"
        );
        let count = i32::from_be_bytes(batch[57..61].try_into().unwrap());
        let mut records = &batch[61..];
        let mut values = Vec::new();
        for _ in 0..count {
            let len = varint(&mut records) as usize;
            let mut record = &records[..len];
            records = &records[len..];
            record = &record[1..]; // attributes
            varint(&mut record); // timestamp delta
            varint(&mut record); // offset delta
            let key_len = varint(&mut record);
            if key_len > 0 {
                record = &record[key_len as usize..];
            }
            let value_len = varint(&mut record);
            values.push(if value_len >= 0 {
                record[..value_len as usize].to_vec()
            } else {
                Vec::new()
            });
        }
        batches.push((base, values));
        bytes = &bytes[12 + length..];
    }
    batches
}

/// Recomputes a batch's CRC32C after a test changed it.
pub fn reseal(batch: &mut BytesMut) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A batch of one record whose value has `value_bytes` bytes.
pub fn value_batch(value_bytes: usize) -> Bytes {
    batch(&[&vec![b'v'; value_bytes]], 1000).freeze()
}

/// A topic name as the protocol types carry it.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_string()))
}

/// A CreateTopics entry with a partition count, replication factor 1 and configs.
pub fn new_topic(
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::create_topics_request::CreatableTopic {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )
}

/// Sends CreateTopics (v7) for these topics.
pub fn create_topics(
    client: &mut Client,
    topics: Vec<kafka_protocol::messages::create_topics_request::CreatableTopic>,
) -> kafka_protocol::messages::CreateTopicsResponse {
    let request = kafka_protocol::messages::CreateTopicsRequest::default().with_topics(topics);
    let ResponseKind::CreateTopics(r) =
        client.call(ApiKey::CreateTopics, 7, &RequestKind::CreateTopics(request))
    else {
        panic!("CreateTopics answer expected");
    };
    r
}

/// Deletes one topic by name (DeleteTopics v6); returns the error code.
pub fn delete_topic(client: &mut Client, topic: &str) -> i16 {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::DeleteTopicsRequest;
    let request = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name(topic)))
    ]);
    let ResponseKind::DeleteTopics(r) =
        client.call(ApiKey::DeleteTopics, 6, &RequestKind::DeleteTopics(request))
    else {
        panic!("DeleteTopics answer expected");
    };
    r.responses[0].error_code
}

/// Creates one topic (replication factor 1) and checks that it was created.
pub fn create_topic(client: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let r = create_topics(client, vec![new_topic(name, partitions, configs)]);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// A Produce request of one record set to one partition (timeout 5 s).
pub fn produce_request(
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    kafka_protocol::messages::ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Sends a one-partition Produce (v9) and returns that partition's answer.
pub fn produce(
    client: &mut Client,
    request: kafka_protocol::messages::ProduceRequest,
) -> kafka_protocol::messages::produce_response::PartitionProduceResponse {
    let ResponseKind::Produce(r) = client.call(ApiKey::Produce, 9, &RequestKind::Produce(request))
    else {
        panic!("Produce answer expected");
    };
    r.responses[0].partition_responses[0].clone()
}

/// FindCoordinator (v4, batched keys) for one group.
pub fn find_coordinator(
    client: &mut Client,
    group_id: &str,
) -> kafka_protocol::messages::find_coordinator_response::Coordinator {
    let request = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_coordinator_keys(vec![StrBytes::from_string(group_id.to_string())]);
    let ResponseKind::FindCoordinator(found) = client.call(
        ApiKey::FindCoordinator,
        4,
        &RequestKind::FindCoordinator(request),
    ) else {
        panic!("FindCoordinator answer expected");
    };
    found.coordinators[0].clone()
}
