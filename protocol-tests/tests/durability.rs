//! Data survives restarts and crashes; an idempotent producer neither loses nor duplicates
//! across dropped connections.

use std::time::Duration;

use protocol_tests::clients::{consume, create_topic, producer};
use protocol_tests::{free_port, Broker, Proxy};
use rdkafka::producer::FutureRecord;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn produce_values(
    bootstrap: &str,
    topic: &str,
    range: std::ops::Range<usize>,
    extra: &[(&str, &str)],
) {
    let producer = producer(bootstrap, extra);
    let mut deliveries = Vec::new();
    for i in range {
        deliveries.push(
            producer
                .send_result(FutureRecord::<(), _>::to(topic).payload(&format!("{i}")))
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
}

fn values(records: &[protocol_tests::clients::Received]) -> Vec<usize> {
    records
        .iter()
        .map(|r| {
            String::from_utf8(r.value.clone().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_graceful_and_crash_restarts() {
    let mut broker = Broker::start(&[]);
    // Small segments (Kafka's test-only internal config) so restarts cross segment files.
    create_topic(
        &broker.bootstrap(),
        "durable",
        2,
        &[("internal.segment.bytes", "4096")],
    )
    .await;
    produce_values(&broker.bootstrap(), "durable", 0..3000, &[("acks", "all")]).await;
    assert_eq!(broker.stop(), Some(0), "SIGTERM exits cleanly");
    assert!(broker.data_dir.join(".kafka_cleanshutdown").exists());
    broker.restart();
    produce_values(
        &broker.bootstrap(),
        "durable",
        3000..4000,
        &[("acks", "all")],
    )
    .await;
    broker.kill9();
    broker.restart();
    let mut got = values(&consume(&broker.bootstrap(), "durable", 2, 4000, TIMEOUT));
    got.sort_unstable();
    assert_eq!(got, (0..4000).collect::<Vec<_>>());
    let segments = std::fs::read_dir(broker.data_dir.join("durable-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(segments > 1, "small segments rolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_acks_all_loses_no_acknowledged_record() {
    let mut broker = Broker::start(&[("log.flush.interval.messages", "1")]);
    create_topic(&broker.bootstrap(), "crash", 1, &[]).await;
    let producer = producer(
        &broker.bootstrap(),
        &[
            ("acks", "all"),
            ("message.timeout.ms", "4000"),
            ("linger.ms", "1"),
            ("retries", "0"),
        ],
    );
    let mut deliveries = Vec::new();
    for i in 0..20_000usize {
        deliveries.push((
            i,
            producer
                .send_result(FutureRecord::<(), _>::to("crash").payload(&format!("{i}")))
                .unwrap(),
        ));
        if i == 8_000 {
            // Let some of them be acknowledged, then crash while the rest are in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.kill9();
        }
    }
    let mut acknowledged = Vec::new();
    for (i, d) in deliveries {
        if let Ok(Ok(delivery)) = d.await {
            let offset = delivery.offset;
            acknowledged.push((offset, i));
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "some writes were acknowledged before the crash"
    );
    broker.restart();
    let records = consume(&broker.bootstrap(), "crash", 1, acknowledged.len(), TIMEOUT);
    for (n, r) in records.iter().enumerate() {
        assert_eq!(r.offset, n as i64, "offsets dense after recovery");
    }
    let by_offset: std::collections::HashMap<i64, usize> = records
        .iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.clone().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .collect();
    for (offset, value) in &acknowledged {
        assert_eq!(
            by_offset.get(offset),
            Some(value),
            "acknowledged record at offset {offset} survived"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_across_dropped_connections() {
    let proxy_port = free_port();
    let broker = Broker::start(&[(
        "advertised.listeners",
        &format!("PLAINTEXT://127.0.0.1:{proxy_port}"),
    )]);
    let proxy = Proxy::start(proxy_port, broker.port);
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    create_topic(&bootstrap, "idem", 1, &[]).await;
    let producer = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.num.messages", "50"),
            ("message.timeout.ms", "60000"),
        ],
    );
    let total = 5000usize;
    let mut deliveries = Vec::new();
    for i in 0..total {
        deliveries.push(
            producer
                .send_result(FutureRecord::<(), _>::to("idem").payload(&format!("{i}")))
                .unwrap(),
        );
        if i % 1000 == 500 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            proxy.sever();
        }
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
    let got = values(&consume(
        &broker.bootstrap(),
        "idem",
        1,
        total + 10,
        Duration::from_secs(10),
    ));
    assert_eq!(
        got,
        (0..total).collect::<Vec<_>>(),
        "no duplicates, no gaps, in order"
    );
}
