"""Every broker config weir describes, compared with Apache Kafka 4.1's own answer.

Weir and a single-node Kafka 4.1 (scripts/kafka-as-weir, the jars scripts/setup.sh installs)
start with the same settings, and DescribeConfigs for the broker must list the same keys
with the same type and sensitivity, and the same value and source for every key whose value
does not name the machine (ports, directories, the listeners Kafka's own single-node
settings add). Read-only flags must match except for the keys listed below, which Kafka
changes live and weir reads at start-up only.
"""
import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from conftest import ROOT, BrokerProcess

# scripts/kafka-reference's own settings for Kafka, given to weir too.
SHARED = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.replication.factor": "1",
          "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
          "share.coordinator.state.topic.replication.factor": "1",
          "share.coordinator.state.topic.min.isr": "1"}
# Values that name this machine or come from Kafka's KRaft set-up: the controller listener,
# and min.insync.replicas, which `kafka-storage.sh format` writes as a dynamic default.
MACHINE = {"listeners", "advertised.listeners", "log.dirs", "controller.quorum.bootstrap.servers",
           "controller.listener.names", "inter.broker.listener.name", "listener.security.protocol.map",
           "process.roles", "node.id", "broker.id", "min.insync.replicas"}
# Dynamic in Kafka, read once at start-up by weir: AlterConfigs of them is refused rather
# than accepted without effect.
READ_AT_START_UP = {"listeners", "listener.security.protocol.map", "max.connections",
                    "num.io.threads", "num.network.threads",
                    "num.recovery.threads.per.data.dir", "log.cleaner.backoff.ms",
                    "producer.id.expiration.ms", "ssl.keystore.password"}


@pytest.fixture(scope="module")
def described():
    out = {}
    kafka = BrokerProcess(SHARED, binary=str(ROOT / "scripts/kafka-as-weir"), ready_seconds=120)
    try:
        weir = BrokerProcess(SHARED)
        try:
            for name, broker in [("weir", weir), ("kafka", kafka)]:
                admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
                configs = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")],
                                                 config_filter="all")
                out[name] = configs["broker"]["1"]
                admin.close()
        finally:
            weir.stop()
    finally:
        kafka.stop()
    return out["weir"], out["kafka"]


def test_same_keys_types_and_sensitivity(described):
    ours, theirs = described
    assert len(theirs) > 300
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert (ours[key]["config_type"], ours[key]["is_sensitive"]) == \
            (theirs[key]["config_type"], theirs[key]["is_sensitive"]), key


def test_same_defaults_and_sources(described):
    ours, theirs = described
    differ = {key: (ours[key]["value"], ours[key]["config_source"],
                    theirs[key]["value"], theirs[key]["config_source"])
              for key in theirs if key not in MACHINE
              and (ours[key]["value"], ours[key]["config_source"])
              != (theirs[key]["value"], theirs[key]["config_source"])}
    assert differ == {}


def test_same_read_only_flags_but_for_keys_read_at_start_up(described):
    ours, theirs = described
    differ = {key for key in theirs if ours[key]["read_only"] != theirs[key]["read_only"]}
    assert differ == READ_AT_START_UP
    assert all(ours[key]["read_only"] and not theirs[key]["read_only"] for key in differ)
