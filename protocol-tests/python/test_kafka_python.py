"""kafka-python against weir: round trip and admin."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError


def test_admin_create_describe_delete(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1,
                                  topic_configs={"max.message.bytes": "2000000"})])
    try:
        admin.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1)])
        raise AssertionError("duplicate create must fail")
    except TopicAlreadyExistsError:
        pass
    assert "kp-admin" in admin.list_topics()
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")])
    entry = described["topic"]["kp-admin"]["max.message.bytes"]
    assert entry["value"] == "2000000"
    assert entry["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert entry["config_type"] == "INT"
    admin.delete_topics(["kp-admin"])
    assert "kp-admin" not in admin.list_topics()
    admin.close()


def test_produce_consume_round_trip(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    for i in range(300):
        producer.send("kp-rt", key=b"k", value=f"m{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    tp = TopicPartition("kp-rt", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = [m.value for m in consumer]
    consumer.close()
    assert values == [f"m{i}".encode() for i in range(300)]
