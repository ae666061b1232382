"""Weir's answers to the request versions Kafka 4 removed (KIP-896), compared with Apache
Kafka 3.9's, the last release that served them.

The same requests, through kafka-python's own codecs of those versions, go to weir and to a
single-node Kafka 3.9.1 started from Maven Central's jars (scripts/kafka-as-weir with
WEIR_KAFKA_LIBS; scripts/setup.sh installs them). The answers are compared after taking
out what legitimately differs (throttle times, topic ids). The differences weir keeps on
purpose are asserted here as differences, so that any other one fails the test; the README
("Versions beyond Kafka 4.1") says why each is kept.
"""
import time

import pytest
from kafka import KafkaProducer
from kafka.protocol.admin import CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest
from kafka.protocol.consumer import (FetchRequest, ListOffsetsRequest, OffsetCommitRequest,
                                     OffsetFetchRequest, OffsetForLeaderEpochRequest)
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest
from kafka.protocol.producer import ProduceRequest
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from conftest import ROOT, BrokerProcess
from old_protocol import old_messages, send


def kafka_legacy_libs():
    pom = (ROOT / "scripts/kafka/versions/pom.xml").read_text()
    version = pom.split("<kafka.legacy.version>")[1].split("<")[0]
    return ROOT / f"scripts/.cache/kafka-{version}/libs", version


@pytest.fixture(scope="module")
def pair():
    libs, version = kafka_legacy_libs()
    assert (libs / ".complete").exists(), f"Kafka {version}'s jars are not installed (scripts/setup.sh)"
    overrides = {"group.initial.rebalance.delay.ms": "0"}
    weir = BrokerProcess(overrides)
    try:
        kafka = BrokerProcess(overrides, binary=str(ROOT / "scripts/kafka-as-weir"),
                              env={"WEIR_KAFKA_LIBS": str(libs)}, ready_seconds=120)
    except Exception:
        weir.stop()
        raise
    yield weir, kafka
    kafka.stop()
    weir.stop()


def produce(broker, topic, count):
    """`count` records through a producer of Kafka 0.10.1's era (Produce v2)."""
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 1))
    for _ in range(count):
        p.send(topic, b"x")
    p.flush(30)
    p.close()


def both(pair, scenario):
    weir, kafka = pair
    return scenario(weir), scenario(kafka)


@pytest.mark.parametrize("api_version,codec", [((0, 9), None), ((0, 9), "snappy"), ((0, 10, 0), "gzip"),
                                               ((0, 10, 1), None), ((0, 10, 1), "lz4")])
def test_produce_then_fetch_and_list_offsets(pair, api_version, codec):
    topic = f"vs-{'.'.join(map(str, api_version))}-{codec}"

    def scenario(broker):
        out = {}
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                          compression_type=codec, linger_ms=20)
        futures = [p.send(topic, key=b"k", value=f"v{i}".encode() * 5,
                          timestamp_ms=1_000_000 + i if api_version >= (0, 10) else None)
                   for i in range(50)]
        p.flush(30)
        out["offsets"] = [f.get(10).offset for f in futures]
        p.close()
        T = FetchRequest.FetchTopic
        P = T.FetchPartition
        for version in range(4):
            for offset, limit in [(0, 1 << 20), (17, 1 << 20), (17, 30), (50, 100), (999, 100)]:
                r = send(broker, (0, 10, 1), FetchRequest(
                    replica_id=-1, max_wait_ms=10, min_bytes=1, max_bytes=1 << 20, max_version=version,
                    topics=[T(topic=topic, partitions=[P(partition=0, fetch_offset=offset,
                                                         partition_max_bytes=limit)])]))
                part = r.responses[0].partitions[0]
                # Weir sends messages from the fetch offset on, uncompressed and within the
                # stored size; Kafka 3 kept the codec and a compressed batch's earlier records.
                got = [m for m in old_messages(part.records) if m[0] >= offset]
                out[f"fetch v{version} from {offset} within {limit}"] = (
                    r.version, part.error_code, part.high_watermark, got[:2], bool(part.records))
        L = ListOffsetsRequest.ListOffsetsTopic
        LP = L.ListOffsetsPartition
        in_an_hour = int(time.time() * 1000) + 3_600_000
        for label, timestamp, count in [("latest", -1, 1), ("latest", -1, 5), ("earliest", -2, 1),
                                        ("earliest", -2, 5), ("long ago", 1_000_010, 1), ("zero", 0, 3),
                                        ("in an hour", in_an_hour, 5)]:
            r = send(broker, (0, 9), ListOffsetsRequest(replica_id=-1, max_version=0, topics=[
                L(name=topic, partitions=[LP(partition_index=0, timestamp=timestamp, max_num_offsets=count),
                                          LP(partition_index=9, timestamp=timestamp, max_num_offsets=count)])]))
            out[f"list offsets v0 {label} x{count}"] = [
                (p.partition_index, p.error_code, list(p.old_style_offsets)) for p in r.topics[0].partitions]
        return out

    ours, theirs = both(pair, scenario)
    assert ours == theirs


def legacy_set(magic, values, corrupt=False):
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=1_000 if magic else None, key=None, value=value)
    data = bytearray(builder.build())
    if corrupt:
        data[-1] ^= 0xFF
    return bytes(data)


def test_produce_refusals(pair):
    """Unknown partitions and corrupt messages in Produce v0-2."""
    def scenario(broker):
        out = {}
        TP = ProduceRequest.TopicProduceData
        PP = TP.PartitionProduceData
        for version, magic in [(0, 0), (1, 0), (2, 1)]:
            for case, index, records in [("ok", 0, legacy_set(magic, [b"a", b"b"])),
                                         ("bad partition", 7, legacy_set(magic, [b"a"])),
                                         ("corrupt", 0, legacy_set(magic, [b"a", b"b"], corrupt=True))]:
                r = send(broker, (0, 10, 1), ProduceRequest(
                    acks=1, timeout_ms=5000, max_version=version,
                    topic_data=[TP(name="vs-produce", partition_data=[PP(index=index, records=records)])]))
                part = r.responses[0].partition_responses[0]
                out[f"v{version} {case}"] = (r.version, part.error_code, part.base_offset)
        return out

    ours, theirs = both(pair, scenario)
    assert ours == theirs


def test_offset_for_leader_epoch_v0_v1(pair):
    T = OffsetForLeaderEpochRequest.OffsetForLeaderTopic
    P = T.OffsetForLeaderPartition

    def scenario(broker):
        produce(broker, "vs-epochs", 5)
        out = {}
        for api_version in [(1, 1), (2, 0)]:
            r = send(broker, api_version, OffsetForLeaderEpochRequest(replica_id=-1, topics=[
                T(topic="vs-epochs", partitions=[P(partition=0, current_leader_epoch=-1, leader_epoch=0),
                                                 P(partition=0, current_leader_epoch=-1, leader_epoch=5),
                                                 P(partition=4, current_leader_epoch=-1, leader_epoch=0)]),
                T(topic="vs-nope", partitions=[P(partition=0, current_leader_epoch=-1, leader_epoch=0)])]))
            out[api_version] = r.to_dict()
        return out

    ours, theirs = both(pair, scenario)
    assert ours == theirs


def test_admin_v0_v1(pair):
    """CreateTopics v0/v1, DescribeConfigs v0, DeleteTopics v0."""
    CT = CreateTopicsRequest.CreatableTopic
    DR = DescribeConfigsRequest.DescribeConfigsResource

    def topic(name, partitions=2, configs=()):
        return CT(name=name, num_partitions=partitions, replication_factor=1, assignments=[],
                  configs=[CT.CreatableTopicConfig(name=k, value=v) for k, v in configs])

    def scenario(broker):
        out = {}
        for version in [0, 1]:
            r = send(broker, (0, 10, 2), CreateTopicsRequest(timeout_ms=10000, max_version=version, topics=[
                topic(f"vs-admin-{version}", configs=[("retention.ms", "123456")]),
                topic(f"vs-admin-twice-{version}"),
                topic(f"vs-admin-twice-{version}"),
                topic(f"vs-admin-bad-config-{version}", configs=[("retention.ms", "soon")]),
                topic(f"vs-admin-no-partitions-{version}", partitions=0),
                topic(f"vs bad name {version}")]))
            # Messages are compared for presence; their wording is Kafka's own.
            out[f"create v{version}"] = sorted((t.name, t.error_code, getattr(t, "error_message", None) is not None)
                                               for t in r.topics)
        time.sleep(1)  # Kafka creates through its controller
        keys = ["retention.ms", "cleanup.policy", "segment.bytes", "min.insync.replicas"]
        r = send(broker, (0, 11), DescribeConfigsRequest(max_version=0, resources=[
            DR(resource_type=2, resource_name="vs-admin-0", configuration_keys=keys),
            DR(resource_type=2, resource_name="vs-missing", configuration_keys=keys),
            DR(resource_type=4, resource_name="1", configuration_keys=[
                "num.partitions", "log.retention.hours", "log.retention.ms", "log.retention.check.interval.ms"])]))
        out["describe v0"] = [
            (res.resource_type, res.resource_name, res.error_code,
             sorted((c.name, c.value, c.read_only, c.is_sensitive) for c in res.configs))
            for res in r.results]
        out["is_default"] = sorted((c.name, c.is_default) for res in r.results for c in res.configs)
        r = send(broker, (0, 10, 1), DeleteTopicsRequest(timeout_ms=10000, max_version=0,
                                                         topic_names=["vs-admin-0", "vs-missing"]))
        out["delete v0"] = sorted((t.name, t.error_code) for t in r.responses)
        return out

    ours, theirs = both(pair, scenario)
    # v0's is_default: Kafka 3 left it false for every config; weir sets it for configs at
    # their default, as the brokers that v0 clients were written for did (README).
    assert all(not default for _, default in theirs.pop("is_default"))
    assert dict(ours.pop("is_default")) == {
        "cleanup.policy": True, "log.retention.check.interval.ms": True, "log.retention.hours": True,
        "log.retention.ms": True, "min.insync.replicas": True, "num.partitions": True,
        "retention.ms": False, "segment.bytes": True}
    assert ours == theirs


def test_offset_commit_v0_v1_and_fetch_v0_v1(pair):
    OT = OffsetCommitRequest.OffsetCommitRequestTopic
    OP = OT.OffsetCommitRequestPartition
    FT = OffsetFetchRequest.OffsetFetchRequestTopic

    def scenario(broker):
        produce(broker, "vs-commits", 1)
        # The group coordinator first (FindCoordinator creates __consumer_offsets), as a
        # client of that era does before it commits.
        for version in [0, 1]:
            deadline = time.time() + 60
            while True:
                r = send(broker, (0, 9), FindCoordinatorRequest(key=f"vs-group-{version}", max_version=0))
                if not isinstance(r, str) and r.error_code == 0:
                    break
                assert time.time() < deadline, f"no group coordinator: {r}"
                time.sleep(0.5)
        out = {}
        for version, api_version in [(0, (0, 8, 1)), (1, (0, 8, 2))]:
            group = f"vs-group-{version}"
            # As a client does, the commit is retried while the coordinator is still
            # loading or moving (COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE,
            # NOT_COORDINATOR): the reference Kafka may answer so just after FindCoordinator.
            deadline = time.time() + 30
            while True:
                r = send(broker, api_version, OffsetCommitRequest(
                    group_id=group, generation_id_or_member_epoch=-1, member_id="", max_version=version,
                    topics=[OT(name="vs-commits", partitions=[
                        OP(partition_index=0, committed_offset=1, commit_timestamp=-1, committed_metadata="m"),
                        OP(partition_index=3, committed_offset=1, commit_timestamp=-1, committed_metadata="m")])]))
                retriable = not isinstance(r, str) and any(
                    p.error_code in (14, 15, 16) for t in r.topics for p in t.partitions)
                if not retriable or time.time() > deadline:
                    break
                time.sleep(0.5)
            out[f"commit v{version}"] = r if isinstance(r, str) else sorted(
                (t.name, p.partition_index, p.error_code) for t in r.topics for p in t.partitions)
            r = send(broker, api_version, OffsetFetchRequest(
                group_id=group, max_version=version,
                topics=[FT(name="vs-commits", partition_indexes=[0, 3])]))
            out[f"fetch v{version}"] = r if isinstance(r, str) else sorted(
                (t.name, p.partition_index, p.committed_offset, p.metadata, p.error_code)
                for t in r.topics for p in t.partitions)
        return out

    ours, theirs = both(pair, scenario)
    # Kafka 3 in KRaft mode refused v0 (it went to ZooKeeper) with UNSUPPORTED_VERSION; weir
    # serves it through the group coordinator, as v1 (README).
    assert ours.pop("commit v0") == [("vs-commits", 0, 0), ("vs-commits", 3, 3)]
    assert ours.pop("fetch v0") == [("vs-commits", 0, 1, "m", 0), ("vs-commits", 3, -1, "", 0)]
    assert theirs.pop("commit v0") == [("vs-commits", 0, 35), ("vs-commits", 3, 35)]
    assert theirs.pop("fetch v0") == [("vs-commits", 0, -1, "", 35), ("vs-commits", 3, -1, "", 35)]
    assert ours == theirs


def test_list_offsets_v0_over_several_segments(pair):
    """ListOffsets v0 lists segment starts: a topic with 1 MiB segments (Kafka 4's least,
    which 3.9 takes too) and 150 batches of 10 KB, so that both roll at the same offset."""
    from confluent_kafka import Producer
    CT = CreateTopicsRequest.CreatableTopic
    L = ListOffsetsRequest.ListOffsetsTopic
    LP = L.ListOffsetsPartition

    def scenario(broker):
        r = send(broker, (0, 10, 1), CreateTopicsRequest(timeout_ms=10000, max_version=0, topics=[
            CT(name="vs-segments", num_partitions=1, replication_factor=1, assignments=[],
               configs=[CT.CreatableTopicConfig(name="segment.bytes", value="1048576")])]))
        assert r.topics[0].error_code == 0
        time.sleep(1)
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                      "acks": "all"})
        for i in range(150):
            p.produce("vs-segments", value=bytes([i % 256]) * 10_000)
            p.flush(10)
        out = {}
        in_an_hour = int(time.time() * 1000) + 3_600_000
        for label, timestamp, count in [("latest", -1, 5), ("latest", -1, 2), ("earliest", -2, 5),
                                        ("in an hour", in_an_hour, 5), ("in an hour", in_an_hour, 1),
                                        ("long ago", 1_000, 5)]:
            r = send(broker, (0, 9), ListOffsetsRequest(replica_id=-1, max_version=0, topics=[
                L(name="vs-segments", partitions=[LP(partition_index=0, timestamp=timestamp,
                                                     max_num_offsets=count)])]))
            [part] = r.topics[0].partitions
            out[f"{label} x{count}"] = (part.error_code, list(part.old_style_offsets))
        return out

    ours, theirs = both(pair, scenario)
    assert len(ours["latest x5"][1]) == 3, f"two segments and the log end: {ours}"
    assert ours == theirs
