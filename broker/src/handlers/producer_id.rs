//! InitProducerId for idempotent producers.

use std::sync::Arc;

use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};

use crate::broker::Broker;
use crate::protocol::ErrorCode;

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    // An error answer names no producer (-1, -1), as Kafka's does.
    let refused = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported yet"
        );
        return refused(ErrorCode::InvalidRequest);
    }
    // KIP-360: an idempotent producer may ask to bump its epoch after an error.
    if request.producer_id.0 >= 0
        && request.producer_epoch >= 0
        && request.producer_epoch < i16::MAX - 1
    {
        return response
            .with_producer_id(request.producer_id)
            .with_producer_epoch(request.producer_epoch + 1);
    }
    match broker.controller.allocate_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "producer id allocation failed");
            refused(ErrorCode::CoordinatorNotAvailable)
        }
    }
}

/// AllocateProducerIds (on the active controller): a block of producer ids for a broker.
pub async fn allocate_producer_ids(
    broker: &Arc<Broker>,
    request: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    match broker
        .controller
        .allocate_producer_block_for(request.broker_id.0, Some(request.broker_epoch))
        .await
    {
        Ok((start, len)) => AllocateProducerIdsResponse::default()
            .with_producer_id_start(ProducerId(start))
            .with_producer_id_len(len as i32),
        Err(e) => AllocateProducerIdsResponse::default()
            .with_error_code(e.code().code())
            .with_producer_id_start(ProducerId(-1)),
    }
}
