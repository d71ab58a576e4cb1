//! `GET /api/engines`: what can read cards here, and whether it answers.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// One engine.
#[derive(Debug, Serialize, ToSchema)]
pub struct EngineInfo {
    /// `vlm` or `ocr`.
    pub name: String,
    /// Batches that name no engine get this one.
    pub default: bool,
    /// Built in and configured, so batches can use it.
    pub available: bool,
    /// Whether it answered just now (for several model servers: whether
    /// any did).
    pub reachable: bool,
    /// What was found, for people.
    pub detail: String,
    /// Model name (VLM only).
    pub model: Option<String>,
    /// Server base URL (VLM only, the first of `servers`; never the key).
    pub base_url: Option<String>,
    /// Cards in flight at most, over all its servers.
    pub concurrency: Option<usize>,
    /// The languages a batch may ask for (OCR only): installed Tesseract
    /// language codes.
    pub languages: Vec<String>,
    /// The language batches get when they ask for none (OCR only).
    pub default_language: Option<String>,
    /// The model servers (VLM only; DESIGN §15), each with its own limit
    /// and health.
    pub servers: Vec<ServerInfo>,
}

/// One model server of the VLM engine.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    /// Base URL.
    pub url: String,
    /// `up` (used), `set_aside` (stopped answering; probed with backoff).
    #[schema(example = "up")]
    pub health: String,
    /// Why it was set aside, while it is.
    pub reason: Option<String>,
    /// Seconds since it was set aside, while it is.
    pub set_aside_seconds: Option<f64>,
    /// Whether it answered just now.
    pub reachable: bool,
    /// Requests allowed at once now (adaptive unless configured).
    pub limit: usize,
    /// Requests out now.
    pub in_flight: usize,
    /// Cards it has read since the server started.
    pub completions: u64,
    /// Requests to it that failed, for any reason, since the server started.
    pub errors: u64,
}

/// The configured engines, which is the default, and whether each is reachable.
#[utoipa::path(get, path = "/api/engines",
    operation_id = "list_engines", tag = "system",
    responses((status = 200, body = Vec<EngineInfo>)))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<EngineInfo>> {
    let default = state.config.default_engine();
    let mut out = Vec::new();
    if let Some(cfg) = &state.config.vlm {
        let engines = state.runner.engines();
        let checks = engines
            .server_engines("vlm")
            .into_iter()
            .map(|e| async move { e.check().await });
        let reached = futures_util::future::join_all(checks).await;
        let servers: Vec<ServerInfo> = engines
            .servers("vlm")
            .into_iter()
            .zip(&reached)
            .map(|(s, reach)| ServerInfo {
                url: s.url.unwrap_or_default(),
                health: if s.set_aside.is_some() {
                    "set_aside"
                } else {
                    "up"
                }
                .into(),
                reason: s.set_aside.as_ref().map(|(_, why)| why.clone()),
                set_aside_seconds: s.set_aside.as_ref().map(|(d, _)| d.as_secs_f64()),
                reachable: reach.is_ok(),
                limit: s.limit,
                in_flight: s.in_flight,
                completions: s.completions,
                errors: s.errors,
            })
            .collect();
        let answering = reached.iter().filter(|r| r.is_ok()).count();
        let detail = match reached.as_slice() {
            [Ok(())] => format!("{} answers at {}", cfg.model, servers[0].url),
            [Err(e)] => e.message.clone(),
            _ => format!(
                "{} of {} servers of {} answer",
                answering,
                reached.len(),
                cfg.model
            ),
        };
        out.push(EngineInfo {
            name: "vlm".into(),
            default: default == "vlm",
            available: true,
            reachable: answering > 0,
            detail,
            model: Some(cfg.model.clone()),
            base_url: cfg.base_urls.first().cloned(),
            concurrency: engines.concurrency("vlm"),
            languages: Vec::new(),
            default_language: None,
            servers,
        });
    }
    let ocr = state.runner.engines().get("ocr");
    out.push(EngineInfo {
        name: "ocr".into(),
        default: default == "ocr",
        available: ocr.is_some(),
        reachable: ocr.is_some(),
        detail: if ocr.is_some() {
            format!(
                "embedded Tesseract, language {}, {} workers",
                state.config.ocr.lang, state.config.ocr.workers
            )
        } else if cfg!(feature = "ocr") {
            format!(
                "Tesseract could not load language {:?}; install its data (tesseract-ocr-{})",
                state.config.ocr.lang, state.config.ocr.lang
            )
        } else {
            "this build has no embedded OCR engine (built without the `ocr` feature)".into()
        },
        model: None,
        base_url: None,
        concurrency: state.runner.engines().concurrency("ocr"),
        languages: if ocr.is_some() {
            cardex_engine::tessdata::installed_languages()
        } else {
            Vec::new()
        },
        default_language: ocr.is_some().then(|| state.config.ocr.lang.clone()),
        servers: Vec::new(),
    });
    Json(out)
}
