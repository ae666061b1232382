//! A request frame (after its length prefix) as a client may send it: the key and version
//! are read, checked against the version table, and the header and body decoded, exactly
//! as a connection does. Nothing may panic; a frame that decodes must encode again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir::protocol::api;

fuzz_target!(|data: &[u8]| {
    let Ok((key, version)) = api::peek_key_version(data) else {
        return;
    };
    if api::check_version(key, version).is_err() {
        let _ = api::decode_header(key, version, Bytes::copy_from_slice(data));
        return;
    }
    let _ = api::decode_request(key, version, Bytes::copy_from_slice(data));
});
