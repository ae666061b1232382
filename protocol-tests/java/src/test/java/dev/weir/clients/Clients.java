package dev.weir.clients;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Java clients configured for a weir broker, and small waiting helpers. */
final class Clients {
    private Clients() {}

    /** The Java client's version, e.g. "4.1.2". */
    static final String CLIENT_VERSION = org.apache.kafka.common.utils.AppInfoParser.getVersion();

    /** Whether the client is 4.0 or newer (the consumer group protocol of KIP-848 is GA). */
    static boolean clientIsKafka4() {
        return Integer.parseInt(CLIENT_VERSION.split("\\.")[0]) >= 4;
    }

    /** A group's state as both the 3.9 and the 4.x clients name it ("Stable", "Empty"). */
    @SuppressWarnings("deprecation")
    static String groupState(org.apache.kafka.clients.admin.ConsumerGroupDescription d) {
        return d.state().toString();
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin(WeirBroker broker) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        return Admin.create(p);
    }

    /** The client's default producer (idempotent, acks=all) plus `extra`. */
    static KafkaProducer<String, String> producer(String bootstrap, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all().get();
    }

    /** Reads `partitions` from the beginning to their end offsets (as of the start) with an
     * assigned, group-less consumer; stops early at `count` records or after 30 s. */
    static List<ConsumerRecord<String, String>> readAll(String bootstrap, Collection<TopicPartition> partitions,
                                                        int count) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, null, Map.of())) {
            c.assign(partitions);
            c.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = c.endOffsets(partitions);
            Instant deadline = Instant.now().plusSeconds(30);
            while (out.size() < count && Instant.now().isBefore(deadline)
                    && partitions.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    /** Polls `consumer` (dropping what it reads) while `waiting` holds, for at most `within`. */
    static void pollWhile(KafkaConsumer<?, ?> consumer, Duration within, BooleanSupplier waiting) {
        Instant deadline = Instant.now().plus(within);
        while (waiting.getAsBoolean() && Instant.now().isBefore(deadline)) {
            consumer.poll(Duration.ofMillis(100));
        }
    }

    static void waitUntil(String what, Duration within, BooleanSupplier condition) {
        Instant deadline = Instant.now().plus(within);
        while (!condition.getAsBoolean()) {
            if (Instant.now().isAfter(deadline)) {
                throw new AssertionError("timed out waiting until " + what);
            }
            WeirBroker.sleep(50);
        }
    }
}
