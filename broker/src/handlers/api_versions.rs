//! ApiVersions, answered from the one version table.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::protocol::api::API_TABLE;
use crate::protocol::ErrorCode;

pub fn handle(_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// KIP-511: a client asking with a version we do not know gets a v0 response carrying
/// UNSUPPORTED_VERSION and our list, from which it picks a version and asks again.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}

fn api_keys() -> Vec<ApiVersion> {
    API_TABLE
        .iter()
        .map(|e| {
            ApiVersion::default()
                .with_api_key(e.key as i16)
                .with_min_version(e.min)
                .with_max_version(e.max)
        })
        .collect()
}
