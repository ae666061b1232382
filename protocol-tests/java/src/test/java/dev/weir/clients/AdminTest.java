package dev.weir.clients;

import static dev.weir.clients.Clients.consumer;
import static dev.weir.clients.Clients.createTopic;
import static dev.weir.clients.Clients.producer;
import static dev.weir.clients.Clients.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Every Admin call weir serves, with the errors a Java application handles. */
class AdminTest {
    static WeirBroker broker;
    static Admin admin;

    @BeforeAll
    static void start() {
        broker = WeirBroker.start(Map.of("group.initial.rebalance.delay.ms", "0"));
        admin = Clients.admin(broker);
    }

    @AfterAll
    static void stop() {
        admin.close();
        broker.close();
    }

    static Throwable cause(ExecutionException e) {
        return e.getCause();
    }

    @Test
    void cluster() throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = cluster.nodes().get();
        assertEquals(1, nodes.size());
        Node node = nodes.iterator().next();
        assertEquals(1, node.id());
        assertEquals("127.0.0.1", node.host());
        assertEquals(broker.port, node.port());
        assertEquals(node, cluster.controller().get());
        assertNotNull(cluster.clusterId().get());
    }

    @Test
    void topicsCreateDescribeGrowDelete() throws Exception {
        String topic = unique("admin-topic");
        createTopic(admin, topic, 2, Map.of("retention.ms", "3600000"));
        ExecutionException exists = assertThrows(ExecutionException.class,
                () -> createTopic(admin, topic, 2, Map.of()));
        assertInstanceOf(TopicExistsException.class, cause(exists));
        assertTrue(admin.listTopics().names().get().contains(topic));

        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        assertEquals(2, d.partitions().size());
        assertFalse(d.isInternal());
        assertNotNull(d.topicId());
        assertEquals(1, d.partitions().get(0).leader().id());
        assertEquals(d.topicId(), admin.describeTopics(
                org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(d.topicId())))
                .allTopicIds().get().get(d.topicId()).topicId());

        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
        assertEquals(4, admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size());
        ExecutionException shrink = assertThrows(ExecutionException.class,
                () -> admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get());
        assertInstanceOf(InvalidPartitionsException.class, cause(shrink));

        // Validation only: nothing is created.
        String dry = unique("dry");
        admin.createTopics(List.of(new NewTopic(dry, 3, (short) 1)),
                new org.apache.kafka.clients.admin.CreateTopicsOptions().validateOnly(true)).all().get();
        assertFalse(admin.listTopics().names().get().contains(dry));

        ExecutionException badConfig = assertThrows(ExecutionException.class, () -> createTopic(admin,
                unique("bad"), 1, Map.of("cleanup.policy", "sometimes")));
        assertInstanceOf(InvalidConfigurationException.class, cause(badConfig));

        admin.deleteTopics(List.of(topic)).all().get();
        ExecutionException gone = assertThrows(ExecutionException.class,
                () -> admin.describeTopics(List.of(topic)).allTopicNames().get());
        assertInstanceOf(UnknownTopicOrPartitionException.class, cause(gone));
        ExecutionException unknownDelete = assertThrows(ExecutionException.class,
                () -> admin.deleteTopics(List.of(topic)).all().get());
        assertInstanceOf(UnknownTopicOrPartitionException.class, cause(unknownDelete));
    }

    @Test
    void offsetsIncludingByTimestampAndDeleteRecords() throws Exception {
        String topic = unique("admin-offsets");
        createTopic(admin, topic, 1, Map.of());
        long base = 1_700_000_000_000L;
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            for (int i = 0; i < 50; i++) {
                p.send(new ProducerRecord<>(topic, 0, base + i * 100L, null, "v" + i));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r;
        r = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get();
        assertEquals(0, r.get(tp).offset());
        r = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all().get();
        assertEquals(50, r.get(tp).offset());
        r = admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 1050))).all().get();
        assertEquals(11, r.get(tp).offset());
        assertEquals(base + 1100, r.get(tp).timestamp());
        r = admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).all().get();
        assertEquals(49, r.get(tp).offset());
        assertEquals(base + 4900, r.get(tp).timestamp());

        assertEquals(20, admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(20)))
                .lowWatermarks().get(tp).get().lowWatermark());
        r = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get();
        assertEquals(20, r.get(tp).offset());
        ExecutionException beyond = assertThrows(ExecutionException.class, () -> admin.deleteRecords(
                Map.of(tp, RecordsToDelete.beforeOffset(51))).all().get());
        assertInstanceOf(org.apache.kafka.common.errors.OffsetOutOfRangeException.class, cause(beyond));
    }

    @Test
    void configsDescribeAndIncrementalAlter() throws Exception {
        String topic = unique("admin-configs");
        createTopic(admin, topic, 1, Map.of());
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "1234567"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all().get();
        Config config = admin.describeConfigs(List.of(res)).all().get().get(res);
        ConfigEntry retention = config.get("retention.ms");
        assertEquals("1234567", retention.value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
        assertEquals("delete,compact", config.get("cleanup.policy").value());
        ConfigEntry segment = config.get("segment.bytes");
        assertEquals("1073741824", segment.value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, segment.source());

        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
        config = admin.describeConfigs(List.of(res)).all().get().get(res);
        assertEquals("604800000", config.get("retention.ms").value());

        ExecutionException invalid = assertThrows(ExecutionException.class,
                () -> admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                        new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all().get());
        assertInstanceOf(InvalidConfigurationException.class, cause(invalid));

        ConfigResource node = new ConfigResource(ConfigResource.Type.BROKER, "1");
        Config brokerConfig = admin.describeConfigs(List.of(node)).all().get().get(node);
        assertEquals("1", brokerConfig.get("num.partitions").value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, brokerConfig.get("num.partitions").source());
    }

    @Test
    void logDirs() throws Exception {
        String topic = unique("admin-dirs");
        createTopic(admin, topic, 1, Map.of());
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            p.send(new ProducerRecord<>(topic, "x")).get();
        }
        Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(1)).allDescriptions().get().get(1);
        assertEquals(Set.of(broker.dataDir.toString()), dirs.keySet());
        LogDirDescription d = dirs.get(broker.dataDir.toString());
        assertEquals(null, d.error());
        var replica = d.replicaInfos().get(new TopicPartition(topic, 0));
        assertNotNull(replica);
        assertTrue(replica.size() > 0);
        assertTrue(d.totalBytes().isPresent() && d.usableBytes().isPresent());
    }

    @Test
    void consumerGroupsListDescribeAlterDeleteOffsetsAndDelete() throws Exception {
        String topic = unique("admin-groups");
        String group = unique("admin-group");
        createTopic(admin, topic, 2, Map.of());
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, null, "v" + i));
            }
            p.flush();
        }
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), group, Map.of())) {
            c.subscribe(List.of(topic));
            Clients.pollWhile(c, Duration.ofSeconds(20), () -> c.assignment().size() < 2);
            c.commitSync(Map.of(p0, new OffsetAndMetadata(3, "meta"), p1, new OffsetAndMetadata(4)));

            ConsumerGroupDescription live = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            assertEquals("Stable", Clients.groupState(live));
            assertEquals(1, live.members().size());
            assertEquals(Set.of(p0, p1), live.members().iterator().next().assignment().topicPartitions());
            ExecutionException notEmpty = assertThrows(ExecutionException.class,
                    () -> admin.deleteConsumerGroups(List.of(group)).all().get());
            assertInstanceOf(GroupNotEmptyException.class, cause(notEmpty));
        }
        Collection<ConsumerGroupListing> groups = admin.listConsumerGroups().all().get();
        assertTrue(groups.stream().anyMatch(g -> g.groupId().equals(group)));

        Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        assertEquals(3, offsets.get(p0).offset());
        assertEquals("meta", offsets.get(p0).metadata());
        assertEquals(4, offsets.get(p1).offset());

        admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(1))).all().get();
        admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get();
        offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        assertEquals(Map.of(p0, 1L), offsets.entrySet().stream()
                .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset())));

        ConsumerGroupDescription empty = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        assertEquals("Empty", Clients.groupState(empty));
        admin.deleteConsumerGroups(List.of(group)).all().get();
        ExecutionException missing = assertThrows(ExecutionException.class,
                () -> admin.deleteConsumerGroups(List.of(group)).all().get());
        assertInstanceOf(GroupIdNotFoundException.class, cause(missing));
    }

    /** Without an authorizer, each resource type reports exactly the operations Kafka 4.1
     * reports for it (clients compare these sets). */
    @Test
    void authorizedOperationsAreKafkasSetsPerResourceType() throws Exception {
        String topic = unique("admin-ops");
        String group = unique("admin-ops");
        createTopic(admin, topic, 1, Map.of());
        assertEquals(Set.of(AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE,
                        AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
                        AclOperation.IDEMPOTENT_WRITE),
                admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true))
                        .authorizedOperations().get());
        assertEquals(Set.of(AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                        AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                        AclOperation.ALTER_CONFIGS),
                admin.describeTopics(List.of(topic), new DescribeTopicsOptions().includeAuthorizedOperations(true))
                        .allTopicNames().get().get(topic).authorizedOperations());
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), group, Map.of())) {
            c.subscribe(List.of(topic));
            Clients.pollWhile(c, Duration.ofSeconds(20), () -> c.assignment().isEmpty());
            assertEquals(Set.of(AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE,
                            AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS),
                    admin.describeConsumerGroups(List.of(group),
                                    new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true))
                            .all().get().get(group).authorizedOperations());
        }
    }
}
