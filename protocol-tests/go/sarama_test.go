package clients

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V4_0_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	return c
}

type saramaMember struct {
	mu     sync.Mutex
	claims map[int32]bool
	values map[string]int
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = map[int32]bool{}
	for _, partitions := range s.Claims() {
		for _, p := range partitions {
			m.claims[p] = true
		}
	}
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		m.mu.Lock()
		m.values[string(msg.Value)]++
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) state() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.claims), len(m.values)
}

// sarama: the idempotent sync producer, an admin client, and two consumer-group members
// that split the partitions, commit, and leave the group with its commits.
func TestSaramaProduceGroupAndAdmin(t *testing.T) {
	b := StartBroker(t, "group.initial.rebalance.delay.ms=0")
	config := saramaConfig()
	admin, err := sarama.NewClusterAdmin([]string{b.Addr}, config)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic, group := unique("sarama"), unique("sarama")
	retention := "3600000"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		t.Fatal(err)
	}
	topics, err := admin.ListTopics()
	if err != nil || topics[topic].NumPartitions != 4 {
		t.Fatalf("list topics: %v %+v", err, topics[topic])
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Name == "retention.ms" && e.Value == "3600000")
	}
	if !found {
		t.Fatalf("retention.ms not described: %+v", entries)
	}

	producer, err := sarama.NewSyncProducer([]string{b.Addr}, config)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i % 7)),
			Value: sarama.StringEncoder(fmt.Sprint(i))}
		if _, _, err := producer.SendMessage(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	producer.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	members := []*saramaMember{{values: map[string]int{}}, {values: map[string]int{}}}
	var wg sync.WaitGroup
	for _, m := range members {
		cg, err := sarama.NewConsumerGroup([]string{b.Addr}, group, config)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(m *saramaMember, cg sarama.ConsumerGroup) {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
					t.Errorf("consume: %v", err)
					return
				}
			}
		}(m, cg)
	}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		c0, v0 := members[0].state()
		c1, v1 := members[1].state()
		if c0 == 2 && c1 == 2 && v0+v1 >= 400 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	all := map[string]int{}
	for _, m := range members {
		for v, n := range m.values {
			all[v] += n
		}
	}
	if len(all) != 400 {
		t.Fatalf("read %d distinct records of 400", len(all))
	}
	c0, _ := members[0].state()
	c1, _ := members[1].state()
	if c0 != 2 || c1 != 2 {
		t.Fatalf("claims %d and %d, want 2 and 2", c0, c1)
	}

	offsets, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, block := range offsets.Blocks[topic] {
		sum += block.Offset
	}
	if sum != 400 {
		t.Fatalf("committed offsets sum to %d, want 400", sum)
	}
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; !ok {
		t.Fatalf("group not listed: %v", groups)
	}
	if err := admin.DeleteConsumerGroup(group); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
}
