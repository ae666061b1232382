// kafkajs against the real weir binary: idempotent producer, a consumer group of two that
// split the partitions and commit, and the admin client.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')
const { startBroker, unique, waitUntil } = require('./broker')

let broker
let kafka

before(async () => {
  broker = await startBroker('group.initial.rebalance.delay.ms=0')
  kafka = new Kafka({ clientId: 'weir-tests', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
})

after(async () => {
  await broker.stop()
})

test('idempotent producer, gzip and none, keys and headers come back in order', async () => {
  const admin = kafka.admin()
  await admin.connect()
  const topic = unique('kafkajs')
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }), true)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    const messages = []
    for (let i = 0; i < 500; i++) {
      messages.push({ key: `k${i % 5}`, value: `${compression}-${i}`, headers: { n: `${i}` } })
    }
    const results = await producer.send({ topic, acks: -1, compression, messages })
    assert.ok(results.every(r => r.errorCode === 0))
  }
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: unique('kafkajs-read') })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = []
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push({ partition, key: message.key.toString(), value: message.value.toString(), n: message.headers.n.toString() })
    }
  })
  await waitUntil('1000 messages are read', 30000, () => seen.length >= 1000)
  await consumer.disconnect()
  assert.equal(seen.length, 1000)
  const partitionOfKey = {}
  const lastOfKey = {}
  for (const m of seen) {
    assert.equal(m.value.split('-')[1], m.n)
    partitionOfKey[m.key] ??= m.partition
    assert.equal(partitionOfKey[m.key], m.partition, 'a key stays on one partition')
    const order = Number(m.value.split('-')[0]) * 1000 + Number(m.n)
    assert.ok(lastOfKey[m.key] === undefined || lastOfKey[m.key] < order, 'per-key order')
    lastOfKey[m.key] = order
  }
  await admin.disconnect()
})

test('two group members split the partitions, commit, and the offsets are kept', async () => {
  const admin = kafka.admin()
  await admin.connect()
  const topic = unique('kafkajs-group')
  const groupId = unique('kafkajs-group')
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true })
  const producer = kafka.producer()
  await producer.connect()
  const messages = Array.from({ length: 400 }, (_, i) => ({ value: `${i}`, partition: i % 4 }))
  await producer.send({ topic, messages })
  await producer.disconnect()

  const read = new Map()
  const members = [kafka.consumer({ groupId }), kafka.consumer({ groupId })]
  const assigned = [new Set(), new Set()]
  for (const [i, member] of members.entries()) {
    member.on(member.events.GROUP_JOIN, e => {
      assigned[i] = new Set(e.payload.memberAssignment[topic] || [])
    })
    await member.connect()
    await member.subscribe({ topic, fromBeginning: true })
    await member.run({
      eachMessage: async ({ message }) => {
        const v = message.value.toString()
        read.set(v, (read.get(v) || 0) + 1)
      }
    })
  }
  await waitUntil('the members split 4 partitions and read everything', 45000,
    () => assigned[0].size === 2 && assigned[1].size === 2 && read.size === 400)
  for (const member of members) await member.disconnect()
  assert.equal(read.size, 400)

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  const sum = offsets[0].partitions.reduce((acc, p) => acc + Number(p.offset), 0)
  assert.equal(sum, 400, 'the commits cover everything read')
  const groups = await admin.listGroups()
  assert.ok(groups.groups.some(g => g.groupId === groupId))
  const described = await admin.describeGroups([groupId])
  assert.equal(described.groups[0].state, 'Empty')
  await admin.deleteGroups([groupId])
  await admin.disconnect()
})

test('admin: metadata, configs, partitions, offsets, delete records and topics', async () => {
  const admin = kafka.admin()
  await admin.connect()
  const topic = unique('kafkajs-admin')
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    waitForLeaders: true
  })
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(metadata.topics[0].partitions.length, 1)
  const cluster = await admin.describeCluster()
  assert.equal(cluster.brokers.length, 1)

  const configs = await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: false })
  const retention = configs.resources[0].configEntries.find(e => e.configName === 'retention.ms')
  assert.equal(retention.configValue, '3600000')
  await admin.alterConfigs({ resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }] })
  const altered = await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: false })
  assert.equal(altered.resources[0].configEntries.find(e => e.configName === 'retention.ms').configValue, '7200000')

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const grown = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(grown.topics[0].partitions.length, 3)

  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: Array.from({ length: 30 }, (_, i) => ({ value: `${i}`, partition: 0 })) })
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets(topic)
  const p0 = offsets.find(o => o.partition === 0)
  assert.equal(p0.high, '30')
  assert.equal(p0.low, '0')
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '12' }] })
  const after = (await admin.fetchTopicOffsets(topic)).find(o => o.partition === 0)
  assert.equal(after.low, '12')

  await admin.deleteTopics({ topics: [topic] })
  await waitUntil('the topic is gone', 10000, async () => !(await admin.listTopics()).includes(topic))
  await admin.disconnect()
})
