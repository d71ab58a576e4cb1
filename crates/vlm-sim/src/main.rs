//! `vlm-sim`: run the simulator as a standalone server.

use std::time::Duration;

use clap::Parser;

/// An OpenAI-compatible vision-model server simulator.
#[derive(Debug, Parser)]
#[command(name = "vlm-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    bind: String,
    /// Model name to answer to.
    #[arg(long, default_value = "sim-vlm")]
    model: String,
    /// Requests served at once.
    #[arg(long, default_value_t = 8)]
    slots: usize,
    /// Milliseconds per request.
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,
    /// Share of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_500_rate: f64,
    /// Share of requests answered 429.
    #[arg(long, default_value_t = 0.0)]
    error_429_rate: f64,
    /// Share of images that always get an unparsable answer.
    #[arg(long, default_value_t = 0.0)]
    bad_answer_rate: f64,
    /// Share of requests that hang.
    #[arg(long, default_value_t = 0.0)]
    hang_rate: f64,
    /// Refuse `response_format: json_schema`.
    #[arg(long)]
    reject_json_schema: bool,
    /// Require this API key.
    #[arg(long)]
    api_key: Option<String>,
    /// Share of cards for which one text value is made up (listed in
    /// /sim/stats under `inventions`), spelled with unlikely tokens.
    #[arg(long, default_value_t = 0.0)]
    hallucinate_rate: f64,
    /// Share of cards whose first text value loops.
    #[arg(long, default_value_t = 0.0)]
    repeat_rate: f64,
    /// Refuse `logprobs`.
    #[arg(long)]
    reject_logprobs: bool,
    /// What is on each card: JSON lines `{"image_sha256": ..., "values":
    /// {...}}`, by the SHA-256 of the image as it is sent; those cards are
    /// answered with their own values.
    #[arg(long, value_name = "FILE")]
    answers: Option<std::path::PathBuf>,
    /// Most images one request may carry (vLLM's `--limit-mm-per-prompt`);
    /// more is a 400.
    #[arg(long, default_value_t = 8)]
    max_images: usize,
}

/// Reads `--answers`.
fn read_answers(
    path: &std::path::Path,
) -> std::io::Result<std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>>
{
    let bad = |line: usize, why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}:{line}: {why}", path.display()),
        )
    };
    let mut answers = std::collections::BTreeMap::new();
    for (i, line) in std::fs::read_to_string(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(i + 1, e.to_string()))?;
        match (row["image_sha256"].as_str(), row["values"].as_object()) {
            (Some(sha), Some(values)) => {
                answers.insert(sha.to_ascii_lowercase(), values.clone());
            }
            _ => return Err(bad(i + 1, "needs image_sha256 and values".into())),
        }
    }
    Ok(answers)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let answers = match &a.answers {
        Some(path) => read_answers(path)?,
        None => Default::default(),
    };
    let config = vlm_sim::SimConfig {
        model: a.model,
        slots: a.slots,
        latency: Duration::from_millis(a.latency_ms),
        error_500_rate: a.error_500_rate,
        error_429_rate: a.error_429_rate,
        bad_answer_rate: a.bad_answer_rate,
        hang_rate: a.hang_rate,
        reject_json_schema: a.reject_json_schema,
        api_key: a.api_key,
        hallucinate_rate: a.hallucinate_rate,
        repeat_rate: a.repeat_rate,
        reject_logprobs: a.reject_logprobs,
        answers: std::sync::Arc::new(answers),
        max_images: a.max_images,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(&a.bind).await?;
    println!("vlm-sim listening on http://{}/v1", listener.local_addr()?);
    vlm_sim::serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
