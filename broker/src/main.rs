//! `weir [server.properties] [--override key=value ...]`: parse args, load config, serve.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use weir::broker::Broker;
use weir::config::BrokerConfig;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match BrokerConfig::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("weir: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let broker = Broker::start(config)?;
    let listeners = weir::server::bind(&broker).await?;
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signals.cancel();
    });
    let health = Arc::clone(broker.replicas.health());
    tokio::spawn(async move {
        health.offline().await;
        // Kafka halts when its last log directory fails; this broker has one. The short
        // pause lets the KAFKA_STORAGE_ERROR answers already written reach their clients.
        tracing::error!(
            "Shutdown broker because all log dirs in {} have failed",
            health.dir().display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        std::process::exit(1);
    });
    weir::server::run(Arc::clone(&broker), listeners, shutdown).await;
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
