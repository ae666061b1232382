"""confluent-kafka (librdkafka) against weir: round trip and admin."""
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic


def consume_all(bootstrap, topic, partitions, expected, timeout=30):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "enable.partition.eof": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    import time
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append(msg)
    consumer.close()
    return out


def test_admin_create_describe_delete(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic("ck-admin", num_partitions=3, replication_factor=1,
                                            config={"retention.ms": "3600000"})])
    futures["ck-admin"].result(10)
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics["ck-admin"].partitions) == 3

    again = admin.create_topics([NewTopic("ck-admin", num_partitions=1, replication_factor=1)])
    try:
        again["ck-admin"].result(10)
        raise AssertionError("duplicate create must fail")
    except Exception as e:  # KafkaException(TOPIC_ALREADY_EXISTS)
        assert "TOPIC_ALREADY_EXISTS" in str(e) or "already exists" in str(e)

    configs = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "ck-admin")])
    entries = list(configs.values())[0].result(10)
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert entries["cleanup.policy"].value == "delete"
    assert entries["cleanup.policy"].is_default

    broker_configs = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
    entries = list(broker_configs.values())[0].result(10)
    assert entries["num.partitions"].value == "1"

    admin.delete_topics(["ck-admin"])["ck-admin"].result(10)
    assert "ck-admin" not in admin.list_topics(timeout=10).topics


def test_produce_consume_round_trip(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "compression.type": "zstd"})
    for i in range(500):
        producer.produce("ck-rt", key=f"k{i % 5}".encode(), value=f"v{i}".encode(),
                         headers=[("h", b"1")])
    assert producer.flush(30) == 0
    msgs = consume_all(broker.bootstrap, "ck-rt", 1, 500)
    assert [m.value() for m in msgs] == [f"v{i}".encode() for i in range(500)]
    assert msgs[0].headers() == [("h", b"1")]
    assert [m.offset() for m in msgs] == list(range(500))


def test_describe_broker_lists_every_kafka_key(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ConfigResource.Type.BROKER, "1")
    entries = list(admin.describe_configs([resource]).values())[0].result(10)
    # Kafka 4.1 documents 316 broker keys; all are listed, as Kafka lists its whole ConfigDef.
    assert len(entries) >= 316, len(entries)
    keystore = entries["ssl.keystore.type"]
    assert keystore.value == "JKS" and keystore.is_default and not keystore.is_read_only
    password = entries["ssl.key.password"]
    assert password.is_sensitive and password.value is None
    assert entries["broker.rack"].value is None
    assert entries["num.partitions"].is_read_only
    assert not entries["log.retention.ms"].is_read_only
    assert not entries["message.max.bytes"].is_read_only
    assert entries["listener.security.protocol.map"].value.startswith("SASL_SSL:SASL_SSL")
    # listeners is dynamic in Kafka, but this broker binds it at start-up only.
    assert entries["listeners"].is_read_only
    # A dynamic Kafka key without effect here can be set and is described as set.
    from confluent_kafka.admin import ConfigEntry, AlterConfigOpType
    change = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("background.threads", "4", incremental_operation=AlterConfigOpType.SET)])
    list(admin.incremental_alter_configs([change]).values())[0].result(10)
    entries = list(admin.describe_configs([resource]).values())[0].result(10)
    assert entries["background.threads"].value == "4"
    assert entries["background.threads"].source == 2  # DYNAMIC_BROKER_CONFIG
