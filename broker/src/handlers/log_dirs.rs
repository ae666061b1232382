//! DeleteRecords and DescribeLogDirs.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    TopicName,
};

use super::str_bytes;
use crate::broker::Broker;

pub fn delete_records(
    broker: &Arc<Broker>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let deleted =
                        super::fetch::leader_for(broker, &topic.name.0, p.partition_index, -1)
                            .and_then(|(partition, _)| partition.delete_records(p.offset));
                    match deleted {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(code) => result.with_low_watermark(-1).with_error_code(code.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    broker.replicas.checkpoint_log_start_offsets();
    DeleteRecordsResponse::default().with_topics(topics)
}

pub fn describe_log_dirs(
    broker: &Arc<Broker>,
    version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect::<std::collections::HashMap<_, _>>()
    });
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for (name, record) in broker.controller.image().topics.iter() {
        let indexes: Vec<i32> = match &wanted {
            None => (0..record.partitions).collect(),
            Some(w) => match w.get(name) {
                Some(list) => list.clone(),
                None => continue,
            },
        };
        let partitions: Vec<DescribeLogDirsPartition> = indexes
            .into_iter()
            .filter_map(|i| broker.replicas.partition(name, i))
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index)
                    .with_partition_size(p.size_bytes() as i64)
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let log_dir = broker
        .config
        .log_dir
        .canonicalize()
        .unwrap_or_else(|_| broker.config.log_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(log_dir.display().to_string()))
        .with_topics(topics);
    if version >= 4 {
        let (total, usable) = match nix::sys::statvfs::statvfs(&log_dir) {
            Ok(s) => (
                (s.blocks() * s.fragment_size()) as i64,
                (s.blocks_available() * s.fragment_size()) as i64,
            ),
            Err(_) => (-1, -1),
        };
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
