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
    /// Whether it answered just now.
    pub reachable: bool,
    /// What was found, for people.
    pub detail: String,
    /// Model name (VLM only).
    pub model: Option<String>,
    /// Server base URL (VLM only; never the key).
    pub base_url: Option<String>,
    /// Cards in flight at most.
    pub concurrency: Option<usize>,
    /// The languages a batch may ask for (OCR only): installed Tesseract
    /// language codes.
    pub languages: Vec<String>,
    /// The language batches get when they ask for none (OCR only).
    pub default_language: Option<String>,
}

/// The configured engines, which is the default, and whether each is reachable.
#[utoipa::path(get, path = "/api/engines",
    operation_id = "list_engines", tag = "system",
    responses((status = 200, body = Vec<EngineInfo>)))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<EngineInfo>> {
    let default = state.config.default_engine();
    let mut out = Vec::new();
    if let (Some(cfg), Some(engine)) = (&state.config.vlm, &state.vlm) {
        let reach = engine.check_reachable().await;
        out.push(EngineInfo {
            name: "vlm".into(),
            default: default == "vlm",
            available: true,
            reachable: reach.is_ok(),
            detail: match reach {
                Ok(()) => format!("{} answers at {}", cfg.model, cfg.base_url),
                Err(e) => e,
            },
            model: Some(cfg.model.clone()),
            base_url: Some(cfg.base_url.clone()),
            concurrency: state.runner.engines().concurrency("vlm"),
            languages: Vec::new(),
            default_language: None,
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
    });
    Json(out)
}
