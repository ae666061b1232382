//! Produce and consume back with librdkafka (the rdkafka crate) against the real broker.

use std::time::Duration;

use protocol_tests::clients::{consume, create_topic, producer};
use protocol_tests::Broker;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn round_trip(broker: &Broker, topic: &str, codec: &str, acks: &str) {
    let producer = producer(
        &broker.bootstrap(),
        &[("compression.codec", codec), ("acks", acks)],
    );
    let count = 300;
    let mut deliveries = Vec::new();
    for i in 0..count {
        let value = format!("{codec}-{acks}-value-{i}-{}", "x".repeat(i % 50));
        let key = format!("key-{i}");
        deliveries.push(
            producer
                .send_result(FutureRecord::to(topic).key(&key).payload(&value))
                .expect("queue"),
        );
    }
    for d in deliveries {
        let delivery = d
            .await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
        assert_eq!(delivery.partition, 0);
        if acks != "0" {
            assert!(delivery.offset >= 0);
        }
    }
    let records = consume(&broker.bootstrap(), topic, 1, count, TIMEOUT);
    assert_eq!(records.len(), count, "{codec} acks={acks}");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets are dense");
        let expected = format!("{codec}-{acks}-value-{i}-{}", "x".repeat(i % 50));
        assert_eq!(r.value.as_deref(), Some(expected.as_bytes()));
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_acks_level_round_trips() {
    let broker = Broker::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for acks in ["0", "1", "all"] {
            let topic = format!("rt-{codec}-{}", acks);
            create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
            round_trip(&broker, &topic, codec, acks).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_stay_in_one_partition_in_order() {
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "keyed", 4, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("acks", "all")]);
    let mut deliveries = Vec::new();
    for i in 0..400 {
        let key = format!("k{}", i % 7);
        let value = format!("{i}");
        deliveries.push(
            producer
                .send_result(FutureRecord::to("keyed").key(&key).payload(&value))
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let records = consume(&broker.bootstrap(), "keyed", 4, 400, TIMEOUT);
    assert_eq!(records.len(), 400);
    let mut partition_of_key = std::collections::HashMap::new();
    let mut last_value_of_key = std::collections::HashMap::new();
    for r in &records {
        let key = r.key.clone().unwrap();
        let value: i64 = String::from_utf8(r.value.clone().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            *partition_of_key.entry(key.clone()).or_insert(r.partition),
            r.partition
        );
        let last = last_value_of_key.insert(key, value);
        assert!(last.is_none_or(|l| l < value), "per-key order kept");
    }
    assert!(
        partition_of_key
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_timestamps_come_back() {
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "headers", 1, &[]).await;
    create_topic(
        &broker.bootstrap(),
        "append-time",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let producer = producer(&broker.bootstrap(), &[]);
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "trace",
            value: Some("abc"),
        })
        .insert(Header {
            key: "empty",
            value: None::<&[u8]>,
        });
    for topic in ["headers", "append-time"] {
        producer
            .send(
                FutureRecord::to(topic)
                    .key("k")
                    .payload("v")
                    .timestamp(1_600_000_000_123)
                    .headers(headers.clone()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let created = consume(&broker.bootstrap(), "headers", 1, 1, TIMEOUT);
    assert_eq!(created[0].timestamp, Some(1_600_000_000_123));
    assert_eq!(
        created[0].headers,
        vec![
            ("trace".to_string(), Some(b"abc".to_vec())),
            ("empty".to_string(), None)
        ]
    );
    let appended = consume(&broker.bootstrap(), "append-time", 1, 1, TIMEOUT);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = appended[0].timestamp.unwrap();
    assert!(
        (now - ts).abs() < 60_000,
        "LogAppendTime stamped by the broker: {ts} vs {now}"
    );
}
