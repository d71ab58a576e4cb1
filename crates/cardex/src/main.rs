//! `cardex`: one binary with the server and the command-line tools.

mod config;
mod extract;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cardex_store::{SharedStore, SqliteStore};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::ServeArgs;

/// Turn boxes of scanned cards into structured data.
#[derive(Debug, Parser)]
#[command(name = "cardex", version, about)]
struct Cli {
    /// TOML file with defaults for any flag (keys as flag names, with `_`).
    #[arg(long, env = "CARDEX_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and web UI.
    Serve(ServeArgs),
    /// Extract fields from a folder of cards in one go, without a server.
    Extract(extract::ExtractArgs),
    /// Print the HTTP API's OpenAPI document (as served at /api/openapi.json).
    Openapi,
}

fn main() -> anyhow::Result<()> {
    #[cfg(feature = "ocr")]
    cardex_runner::ensure_openmp_thread_limit()?;
    let cli = Cli::parse();
    // The log goes to stderr: stdout carries results (`extract` without
    // `-o`, `openapi`) and the server's URL.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into()),
        )
        .init();
    let file = match &cli.config {
        Some(path) => ServeArgs::from_file(path)?,
        None => ServeArgs::default(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args.or(file))),
        Command::Openapi => {
            println!("{}", cardex_server::openapi_json());
            Ok(())
        }
        Command::Extract(args) => {
            let code = runtime.block_on(extract::run(args))?;
            std::process::exit(code);
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.server_config()?;
    let data_dir = args.data_dir();
    let store: SharedStore = Arc::new(
        SqliteStore::open(&data_dir)
            .await
            .with_context(|| format!("cannot open the data dir {}", data_dir.display()))?,
    );
    let bind = args.bind();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && config.api_token.is_none() {
        tracing::warn!(
            "listening on {addr} without --api-token: anyone who can reach it can use it"
        );
    }
    tracing::info!(data_dir = %store.layout().root().display(), engine = config.default_engine(), "cardex starting");
    let state = cardex_server::AppState::new(store.clone(), config).map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    println!("cardex is running at http://{addr}/");
    cardex_server::serve(listener, state, shutdown.clone().cancelled_owned()).await?;
    store.close().await;
    Ok(())
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn stop_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on Unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}
