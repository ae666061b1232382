//! A `server.properties` text and `--override` pairs, as the broker reads them at start-up,
//! and each pair as a topic config: bad text is an error naming the key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::{parse_properties, BrokerConfig};
use weir::log::TopicConfig;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs = parse_properties(&text);
    let mut args = Vec::new();
    for (key, value) in &pairs {
        let _ = TopicConfig::validate(key, value);
        args.push("--override".to_string());
        args.push(format!("{key}={value}"));
    }
    if let Ok(config) = BrokerConfig::load_from(&args, &[]) {
        let _ = TopicConfig::resolve(&config, pairs.clone());
    }
});
