"""Clients older than Kafka 4 accepts: kafka-python told to speak to a 0.8-0.11 broker.

Kafka 4 removed the request versions these clients send (KIP-896): Produce v0-2 with
message sets of magic 0/1, Fetch v0-3, ListOffsets v0, OffsetCommit v0-1, OffsetFetch v0,
CreateTopics v0-1, DeleteTopics v0, DescribeConfigs v0. Weir serves them. Each test pins
kafka-python's `api_version`, which fixes the versions it sends, and checks what a modern
client sees of the same data (and the other way round).
"""
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition as CkTopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from conftest import ROOT, BrokerProcess
from old_protocol import old_messages, send_raw

# api_version -> (produce magic, fetch magic): 0.9 sends Produce v1 / Fetch v1 (magic 0),
# 0.10.0 Produce v2 / Fetch v2 (magic 1), 0.10.1 Fetch v3 (max_bytes).
OLD_VERSIONS = [(0, 9), (0, 10, 0), (0, 10, 1)]


@pytest.fixture(scope="module")
def broker():
    """One broker for the module; groups start at once (every test forms new ones)."""
    b = BrokerProcess({"group.initial.rebalance.delay.ms": "0"})
    yield b
    b.stop()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def take(consumer, count):
    """The first `count` records a kafka-python consumer yields (fewer if it times out)."""
    out = []
    for message in consumer:
        out.append(message)
        if len(out) == count:
            break
    return out


def modern_read(broker, topic, count):
    """What librdkafka (Fetch v11+, magic 2) reads of a topic from the start."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("modern"),
                  "enable.auto.commit": False})
    c.assign([CkTopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + 30
    while len(out) < count and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


@pytest.mark.parametrize("api_version", OLD_VERSIONS, ids=lambda v: ".".join(map(str, v)))
@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4"])
def test_old_producer_and_group_consumer(broker, api_version, codec):
    topic = unique("old")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                             compression_type=codec, linger_ms=5, acks=1,
                             batch_size=1024)  # stored batches within the 2 KiB fetch limit below
    sent_at = int(time.time() * 1000)
    futures = [producer.send(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode() * 3,
                             timestamp_ms=sent_at + i if api_version >= (0, 10) else None)
               for i in range(500)]
    producer.flush(30)
    offsets = [f.get(10).offset for f in futures]
    producer.close()
    assert offsets == list(range(500)), "dense offsets, in order"

    # A group member of that era: JoinGroup/SyncGroup, Fetch v1-3, OffsetCommit v2.
    group = unique("oldgroup")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, api_version=api_version,
                             group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=15000, fetch_max_bytes=4096, max_partition_fetch_bytes=2048)
    got = take(consumer, 500)
    assert [m.value for m in got] == [f"v{i}".encode() * 3 for i in range(500)]
    assert [m.offset for m in got] == list(range(500))
    assert got[3].key == b"k3"
    if api_version >= (0, 10):
        assert [m.timestamp for m in got[:3]] == [sent_at, sent_at + 1, sent_at + 2]
    consumer.commit()
    assert consumer.committed(TopicPartition(topic, 0)) == 500
    consumer.close()

    # The same records through Fetch v11+: one v2 batch per old message set.
    modern = modern_read(broker, topic, 500)
    assert [m.value() for m in modern] == [f"v{i}".encode() * 3 for i in range(500)]
    if api_version >= (0, 10):
        assert modern[0].timestamp()[1] == sent_at


@pytest.mark.parametrize("api_version", OLD_VERSIONS, ids=lambda v: ".".join(map(str, v)))
def test_old_consumer_reads_what_modern_producers_wrote(broker, api_version):
    topic = unique("new2old")
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "zstd", "linger.ms": 5})
    for i in range(300):
        p.produce(topic, key=b"key", value=f"m{i}".encode(), headers=[("h", b"x")])
    assert p.flush(20) == 0
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                             enable_auto_commit=False, consumer_timeout_ms=15000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    # From the middle of a batch: the records before the fetch offset are not returned.
    consumer.seek(tp, 137)
    got = take(consumer, 300 - 137)
    assert [m.offset for m in got] == list(range(137, 300))
    assert got[0].value == b"m137" and got[0].key == b"key"
    # ListOffsets v0 (0.9) or v1.
    assert consumer.end_offsets([tp])[tp] == 300
    assert consumer.beginning_offsets([tp])[tp] == 0
    consumer.close()


def test_offset_commit_v0_and_v1_without_a_group_generation(broker):
    """kafka-python 0.8.1 commits with OffsetCommit v0, 0.8.2 with v1 (generation -1), and
    reads them back with OffsetFetch v0/v1: commits of a group with no members."""
    topic = unique("oldcommit")
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce(topic, value=b"x")
    assert p.flush(10) == 0
    for api_version, offset in [((0, 8, 1), 4), ((0, 8, 2), 7)]:
        group = unique("g")
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                                 group_id=group, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        from kafka.structs import OffsetAndMetadata
        consumer.commit({tp: OffsetAndMetadata(offset, "meta", -1)})
        assert consumer.committed(tp) == offset
        consumer.close()
        # A modern client sees the same commit.
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        [committed] = c.committed([CkTopicPartition(topic, 0)], timeout=10)
        c.close()
        assert committed.offset == offset, api_version


def test_old_admin_requests(broker):
    """CreateTopics v0/v1, DescribeConfigs v0 and DeleteTopics v0."""
    # 0.10.1: CreateTopics v0; 0.10.2: v1 (validate_only); 0.11: v2 and DescribeConfigs v0.
    for api_version in [(0, 10, 1), (0, 10, 2), (0, 11)]:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=api_version)
        topic = unique("oldadmin")
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                      topic_configs={"retention.ms": "123456"})])
        assert topic in admin.list_topics()
        if api_version >= (0, 11):
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                              config_filter="all")
            entry = described["topic"][topic]["retention.ms"]
            assert entry["value"] == "123456"
            assert entry["is_default"] is False
            assert described["topic"][topic]["cleanup.policy"]["is_default"] is True
        admin.delete_topics([topic])
        deadline = time.time() + 10
        while topic in admin.list_topics() and time.time() < deadline:
            time.sleep(0.2)
        assert topic not in admin.list_topics()
        admin.close()



def test_offset_for_leader_epoch_and_log_dirs_of_1_x_brokers(broker):
    """OffsetForLeaderEpoch v0 (Kafka 1.1) and v1 (2.0), and DescribeLogDirs v0 (1.x), through
    kafka-python's own codecs of those versions."""
    from kafka.protocol.consumer import OffsetForLeaderEpochRequest
    topic = unique("ofle")
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for _ in range(5):
        p.produce(topic, b"x")
    assert p.flush(10) == 0
    T = OffsetForLeaderEpochRequest.OffsetForLeaderTopic
    P = T.OffsetForLeaderPartition
    for api_version, version in [((1, 1), 0), ((2, 0), 1)]:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=api_version)
        request = OffsetForLeaderEpochRequest(replica_id=-1, topics=[T(topic=topic, partitions=[
            P(partition=0, current_leader_epoch=-1, leader_epoch=0),
            P(partition=7, current_leader_epoch=-1, leader_epoch=0)])])

        response = send_raw(admin, request)
        assert response.version == version
        [result] = response.topics
        ok, missing = result.partitions
        assert (ok.error_code, ok.partition, ok.end_offset) == (0, 0, 5)
        assert (missing.error_code, missing.end_offset) == (3, -1)  # UNKNOWN_TOPIC_OR_PARTITION
        if version == 1:
            assert (ok.leader_epoch, missing.leader_epoch) == (0, -1)
        dirs = admin.describe_log_dirs({topic: [0]})
        [log_dir] = dirs[0]["log_dirs"]
        [described] = log_dir["topics"]
        assert described["name"] == topic and described["partitions"][0]["partition_size"] > 0
        admin.close()


def test_raw_old_fetch_and_list_offsets(broker):
    """What the broker itself sends to Fetch v1-3 and ListOffsets v0: converted messages
    from the fetch offset on (not just what a client would skip), nothing when a batch does
    not fit a v0-2 partition limit, and v0's offset lists."""
    from kafka.protocol.consumer import FetchRequest, ListOffsetsRequest
    topic = unique("raw")
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50, "compression.type": "gzip"})
    for i in range(300):
        p.produce(topic, key=b"key", value=f"m{i}".encode() * 10, timestamp=1_000_000 + i)
    assert p.flush(10) == 0
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 0))
    T = FetchRequest.FetchTopic
    P = T.FetchPartition

    def fetch(version, partition_max_bytes):
        request = FetchRequest(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20,
                               max_version=version, topics=[T(topic=topic, partitions=[
                                   P(partition=0, fetch_offset=137, partition_max_bytes=partition_max_bytes)])])
        response = send_raw(admin, request)
        assert response.version == version
        [part] = response.responses[0].partitions
        assert (part.error_code, part.high_watermark) == (0, 300)
        return part.records

    v2 = old_messages(fetch(2, 1 << 20))
    # Within the stored size (the batch is gzip, the messages are not), from offset 137 on.
    assert v2 and v2[0] == (137, 1_000_137, b"key", b"m137" * 10)
    assert [m[0] for m in v2] == list(range(137, 137 + len(v2)))
    v1 = old_messages(fetch(1, 1 << 20))
    assert v1[0] == (137, None, b"key", b"m137" * 10), "magic 0 has no timestamp"
    # v0-2 limits are hard, even for the first partition: a batch that does not fit is not
    # sent at all, as from Kafka 3.
    assert fetch(2, 30) == b""

    L = ListOffsetsRequest.ListOffsetsTopic
    LP = L.ListOffsetsPartition
    # Kafka 3's answer: segment starts (and the high watermark) last written before the time.
    in_an_hour = int(time.time() * 1000) + 3_600_000
    for timestamp, expected in [(-1, [300, 0]), (-2, [0]), (1_000_100, []), (in_an_hour, [300, 0])]:
        request = ListOffsetsRequest(replica_id=-1, max_version=0, topics=[L(name=topic, partitions=[
            LP(partition_index=0, timestamp=timestamp, max_num_offsets=5)])])
        response = send_raw(admin, request)
        assert response.version == 0
        [part] = response.topics[0].partitions
        assert (part.error_code, part.old_style_offsets) == (0, expected), timestamp
    admin.close()

DEBIAN_GOPATH = "/usr/share/gocode"


def test_debian_packaged_sarama(broker):
    """Debian's sarama 1.22.1 (golang-github-shopify-sarama-dev, installed by setup), built
    in GOPATH mode against Debian's sources: Produce v0/v2, Fetch v0/v3, ListOffsets v0,
    OffsetCommit/OffsetFetch v1 and a consumer group of that era
    (protocol-tests/old-sarama/main.go says what each step checks)."""
    assert Path(DEBIAN_GOPATH, "src/github.com/Shopify/sarama").is_dir(), \
        "golang-github-shopify-sarama-dev is not installed (scripts/setup.sh installs it)"
    env = dict(os.environ, GO111MODULE="off", GOPATH=DEBIAN_GOPATH, GOFLAGS="")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp, "old-sarama")
        subprocess.run(["go", "build", "-o", str(binary), "./protocol-tests/old-sarama"], cwd=ROOT,
                       env=env, check=True, capture_output=True, timeout=600)
        # The program stops itself after 150 s without progress, saying where it was.
        run = subprocess.run([str(binary), broker.bootstrap, unique("deb")], capture_output=True,
                             text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", \
        run.stdout + run.stderr + "\nbroker log:\n" + broker.log()[-5000:]
