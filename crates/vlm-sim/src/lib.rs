//! An OpenAI-compatible chat-completions server that behaves like a vision
//! model server under load, for cardex's tests and benchmarks.
//!
//! - **Slots**: at most `slots` requests are served at once (like a server's
//!   concurrent sequences); the rest wait in line. Each takes `latency`.
//! - **Faults**: 500s, 429s with `Retry-After`, and hangs, each at a rate,
//!   per request; unparsable answers per image (the same image always gets
//!   one), so a test knows which cards must end in `_errors/`.
//! - **Answers** are a pure function of the image bytes and the requested
//!   fields ([`answer_for`]), so tests can check every card's result. A
//!   request may carry several images (both sides of a card): the answer
//!   comes from the first, the front, and every image counts in the usage.
//! - **Validation** as strict as a real server: message shapes, data-URL
//!   images, the strict-mode schema rules; a bad request is a 400.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The model name it answers to.
    pub model: String,
    /// Requests served at once; more wait in line.
    pub slots: usize,
    /// Time each request takes once it has a slot.
    pub latency: Duration,
    /// Share of requests answered 500.
    pub error_500_rate: f64,
    /// Share of requests answered 429 with `Retry-After`.
    pub error_429_rate: f64,
    /// What `Retry-After` says: seconds (`1`, `inf`, `1e20`) or an HTTP date.
    pub retry_after: String,
    /// Share of images (by content) that always get an unparsable answer.
    pub bad_answer_rate: f64,
    /// Share of requests that hang for `hang` before a 500.
    pub hang_rate: f64,
    /// How long a hang lasts.
    pub hang: Duration,
    /// Refuse `response_format: json_schema` with a 400, as some servers do.
    pub reject_json_schema: bool,
    /// Require this bearer key; others get 401.
    pub api_key: Option<String>,
    /// Share of images (by content) whose answer is cut off at the token
    /// limit (`finish_reason: "length"`, unfinished JSON).
    pub truncate_rate: f64,
    /// Share of images (by content) the model refuses (`message.refusal`).
    pub refuse_rate: f64,
    /// Answer with more than 4 MiB of text (a runaway server).
    pub oversized_answers: bool,
    /// Behave like OpenAI's reasoning models: refuse `max_tokens` and a
    /// `temperature` other than 1 with a 400 naming them.
    pub reasoning_model: bool,
    /// Most images one request may carry; more is a 400 worded as vLLM
    /// words it (its `--limit-mm-per-prompt`).
    pub max_images: usize,
    /// How many of the last images received to keep in
    /// [`Stats::recent_images`], for tests that check what reached the
    /// model; 0 (the default) keeps none and copies nothing.
    pub keep_images: usize,
    /// Answer every card with this object instead of [`answer_for`], for
    /// tests of how answers are read (`"3,50"`, `"12 March 1931"`).
    pub fixed_answer: Option<Map<String, Value>>,
    /// Share of cards (by content) for which one text value is made up:
    /// replaced by a plausible value that is not the card's, and spelled
    /// with less likely tokens. Which ones is in [`Stats::inventions`].
    pub hallucinate_rate: f64,
    /// Refuse `logprobs` with a 400, as some servers do.
    pub reject_logprobs: bool,
    /// Share of cards (by content) whose first text value loops
    /// (`"… 1. 1. 1. 1."`), as a model stuck on a pattern writes.
    pub repeat_rate: f64,
    /// What is on each card, by the SHA-256 (hex) of the image as it is
    /// sent: such a card is answered with its own values, like a model
    /// that reads well, and an invention ([`SimConfig::hallucinate_rate`])
    /// takes the same field's value from another card of the table.
    /// Cards not in it get [`answer_for`]'s made-up values.
    pub answers: std::sync::Arc<std::collections::BTreeMap<String, Map<String, Value>>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            model: "sim-vlm".into(),
            slots: 8,
            latency: Duration::from_millis(20),
            error_500_rate: 0.0,
            error_429_rate: 0.0,
            retry_after: "1".into(),
            bad_answer_rate: 0.0,
            hang_rate: 0.0,
            hang: Duration::from_secs(3600),
            reject_json_schema: false,
            api_key: None,
            keep_images: 0,
            max_images: 8,
            truncate_rate: 0.0,
            refuse_rate: 0.0,
            oversized_answers: false,
            reasoning_model: false,
            fixed_answer: None,
            hallucinate_rate: 0.0,
            reject_logprobs: false,
            repeat_rate: 0.0,
            answers: Default::default(),
        }
    }
}

/// Counters, served at `GET /sim/stats`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Answers with a usable result.
    pub completed: AtomicU64,
    /// Requests refused as malformed.
    pub invalid: AtomicU64,
    /// 500s sent.
    pub errors_500: AtomicU64,
    /// 429s sent.
    pub errors_429: AtomicU64,
    /// Unparsable answers sent.
    pub bad_answers: AtomicU64,
    /// Hangs started.
    pub hangs: AtomicU64,
    /// Answers cut off at the token limit.
    pub truncated: AtomicU64,
    /// Refusals sent.
    pub refused: AtomicU64,
    /// Prompt tokens reported in answers' `usage`, summed.
    pub prompt_tokens: AtomicU64,
    /// Generated tokens reported, summed.
    pub completion_tokens: AtomicU64,
    /// Total tokens reported, summed.
    pub total_tokens: AtomicU64,
    /// Cached prompt tokens reported, summed.
    pub cached_tokens: AtomicU64,
    /// Hashes of the prompt texts seen, for `cached_tokens`: a prompt's
    /// text is cached once it has been seen (prefix caching).
    #[serde(skip)]
    pub prompts_seen: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
    /// Values made up ([`SimConfig::hallucinate_rate`]), the most recent
    /// 10,000: `{image_sha256, field, value}`.
    pub inventions: std::sync::Mutex<Vec<Value>>,
    /// Requests being served now.
    pub busy: AtomicU64,
    /// Most requests served at once.
    pub busy_max: AtomicU64,
    /// Total time slots were busy, in microseconds, for requests served.
    pub busy_micros: AtomicU64,
    /// Sum of the start times (µs since the simulator started) of the
    /// requests being served now; with `busy` it gives the busy time so
    /// far of requests not yet finished.
    pub busy_started_sum: AtomicU64,
    /// Images in valid requests, summed.
    pub images: AtomicU64,
    /// Valid requests by how many images they carried: `{"1": n, "2": m}`.
    pub images_per_request: std::sync::Mutex<std::collections::BTreeMap<usize, u64>>,
    /// The last [`SimConfig::keep_images`] images of valid requests, oldest
    /// first (a request's in its order), so a test can check what reached
    /// the model (upright, first page).
    #[serde(skip)]
    pub recent_images: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
    /// The SHA-256s (hex) of each of the last [`SimConfig::keep_images`]
    /// valid requests' images, in their order, so a test can check which
    /// images went together (front, back).
    #[serde(skip)]
    pub recent_requests: std::sync::Mutex<std::collections::VecDeque<Vec<String>>>,
}

impl Stats {
    /// Counts a valid request's images, and keeps them when asked to.
    fn saw_images(&self, images: &[Vec<u8>], keep: usize) {
        self.images
            .fetch_add(images.len() as u64, Ordering::Relaxed);
        *self
            .images_per_request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(images.len())
            .or_default() += 1;
        if keep == 0 {
            return;
        }
        let mut recent = self
            .recent_images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for image in images {
            while recent.len() >= keep {
                recent.pop_front();
            }
            recent.push_back(image.clone());
        }
        let mut requests = self
            .recent_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while requests.len() >= keep {
            requests.pop_front();
        }
        requests.push_back(images.iter().map(|i| hex_sha256(i)).collect());
    }
}

#[derive(Debug, Clone)]
struct Sim {
    /// When the simulator started; the clock of `busy_started_sum`.
    epoch: std::time::Instant,
    config: Arc<SimConfig>,
    slots: Arc<Semaphore>,
    stats: Arc<Stats>,
}

/// The simulator's routes: `POST /v1/chat/completions`, `GET /v1/models`,
/// `GET /sim/stats`.
pub fn router(config: SimConfig) -> (Router, Arc<Stats>) {
    let stats = Arc::new(Stats::default());
    let sim = Sim {
        epoch: std::time::Instant::now(),
        slots: Arc::new(Semaphore::new(config.slots.max(1))),
        config: Arc::new(config),
        stats: stats.clone(),
    };
    let router = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/sim/stats", get(stats_handler))
        .with_state(sim);
    (router, stats)
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = router(config);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    (
        status,
        Json(json!({"error": {"message": message, "type": kind}})),
    )
        .into_response()
}

async fn models(State(sim): State<Sim>) -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": sim.config.model, "object": "model"}]}))
}

/// The counters, plus `busy_micros_now`: slot time used so far, requests
/// in service included, so that capacity use over any interval is exact.
async fn stats_handler(State(sim): State<Sim>) -> Json<Value> {
    let stats = &sim.stats;
    let now = sim.epoch.elapsed().as_micros() as u64;
    let busy_now = stats.busy_micros.load(Ordering::Relaxed)
        + (stats.busy.load(Ordering::Relaxed) * now)
            .saturating_sub(stats.busy_started_sum.load(Ordering::Relaxed));
    let mut body = serde_json::to_value(&**stats).unwrap_or_default();
    body["busy_micros_now"] = json!(busy_now);
    Json(body)
}

async fn chat(State(sim): State<Sim>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let stats = &sim.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(key) = &sim.config.api_key {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
        }
    }
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| Rejection::Bad(format!("body is not JSON: {e}")))
        .and_then(|v| validate(&v, &sim.config));
    let request = match parsed {
        Ok(r) => r,
        Err(Rejection::NotFound(m)) => return openai_error(StatusCode::NOT_FOUND, &m),
        Err(Rejection::Bad(m)) => {
            stats.invalid.fetch_add(1, Ordering::Relaxed);
            return openai_error(StatusCode::BAD_REQUEST, &m);
        }
    };
    stats.saw_images(&request.images, sim.config.keep_images);

    // Wait in line for a slot, as a real server queues sequences.
    let Ok(_slot) = sim.slots.acquire().await else {
        return openai_error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let _in_service = InService::begin(&sim);
    respond(&sim, &request).await
}

/// A request holding a slot; its time is booked when it ends, also when
/// the client hangs up first and the handler is dropped.
struct InService<'a> {
    sim: &'a Sim,
    started: u64,
}

impl<'a> InService<'a> {
    fn begin(sim: &'a Sim) -> Self {
        let stats = &sim.stats;
        let started = sim.epoch.elapsed().as_micros() as u64;
        stats.busy_started_sum.fetch_add(started, Ordering::Relaxed);
        let busy = stats.busy.fetch_add(1, Ordering::Relaxed) + 1;
        stats.busy_max.fetch_max(busy, Ordering::Relaxed);
        Self { sim, started }
    }
}

impl Drop for InService<'_> {
    fn drop(&mut self) {
        let stats = &self.sim.stats;
        let ended = self.sim.epoch.elapsed().as_micros() as u64;
        stats
            .busy_micros
            .fetch_add(ended - self.started, Ordering::Relaxed);
        stats.busy.fetch_sub(1, Ordering::Relaxed);
        stats
            .busy_started_sum
            .fetch_sub(self.started, Ordering::Relaxed);
    }
}

async fn respond(sim: &Sim, request: &Request) -> Response {
    let (config, stats) = (&sim.config, &sim.stats);
    let roll: f64 = rand::rng().random();
    if roll < config.hang_rate {
        stats.hangs.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(config.hang).await;
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, "hung request gave up");
    }
    tokio::time::sleep(config.latency).await;
    if roll < config.hang_rate + config.error_500_rate {
        stats.errors_500.fetch_add(1, Ordering::Relaxed);
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, "simulated server error");
    }
    if roll < config.hang_rate + config.error_500_rate + config.error_429_rate {
        stats.errors_429.fetch_add(1, Ordering::Relaxed);
        let mut res = openai_error(StatusCode::TOO_MANY_REQUESTS, "simulated rate limit");
        if let Ok(value) = config.retry_after.parse() {
            res.headers_mut().insert("retry-after", value);
        }
        return res;
    }
    // What is answered is the front's, as a model reads a card from its
    // front and takes the back as more of it.
    let front = request.front();
    let finish_reason = if image_share(front, 1) < config.truncate_rate {
        "length"
    } else {
        "stop"
    };
    if image_share(front, 2) < config.refuse_rate {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        let refusal = "I'm sorry, I can't help with that request.";
        return Json(json!({
            "id": "chatcmpl-sim", "object": "chat.completion", "model": config.model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": null,
                "refusal": refusal}}],
            "usage": request.usage(refusal, stats),
        }))
        .into_response();
    }
    let mut invented: Option<(String, String)> = None;
    let content = if is_bad_image(front, config.bad_answer_rate) {
        stats.bad_answers.fetch_add(1, Ordering::Relaxed);
        "I'm sorry, I can't make out the text on this card.".to_owned()
    } else {
        stats.completed.fetch_add(1, Ordering::Relaxed);
        let sha = hex_sha256(front);
        let truth = config.answers.get(&sha);
        let mut values = match (&config.fixed_answer, truth) {
            (Some(fixed), _) => fixed.clone(),
            (None, Some(truth)) => answer_from(truth, &request.fields),
            (None, None) => answer_for(front, &request.fields),
        };
        if image_share(front, 3) < config.hallucinate_rate {
            invented = match truth {
                Some(_) => invent_from(&config.answers, &sha, &request.fields, &mut values),
                None => invent(front, &request.fields, &mut values),
            };
            if let Some((field, value)) = &invented {
                let mut list = stats
                    .inventions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if list.len() < 10_000 {
                    list.push(json!({"image_sha256": sha, "field": field, "value": value}));
                }
            }
        }
        if invented.is_none()
            && image_share(front, 5) < config.repeat_rate
            && let Some((name, _)) = request.fields.iter().find(|(_, ty)| ty == "string")
        {
            values.insert(
                name.clone(),
                Value::String(format!("{name} {}", "1. ".repeat(12))),
            );
        }
        let answer = serde_json::to_string(&values).expect("a JSON map always serialises");
        if request.fenced {
            format!("Here is the extracted data:\n```json\n{answer}\n```")
        } else {
            answer
        }
    };
    let content = if finish_reason == "length" {
        stats.truncated.fetch_add(1, Ordering::Relaxed);
        // Generation stopped mid-answer: the JSON never closes.
        content[..content.len() / 2].to_owned()
    } else if config.oversized_answers {
        format!("{content}{}", " ".repeat(5 * 1024 * 1024))
    } else {
        content
    };
    let mut choice = json!({"index": 0, "finish_reason": finish_reason,
                            "message": {"role": "assistant", "content": content}});
    // An oversized answer is big enough without its tokens.
    if request.logprobs && !config.oversized_answers {
        let unsure = invented.as_ref().and_then(|(_, v)| {
            let quoted = serde_json::to_string(v).ok()?;
            content.find(&quoted).map(|at| (at, at + quoted.len()))
        });
        choice["logprobs"] = json!({"content": token_logprobs(&content, unsure, front)});
    }
    Json(json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "model": config.model,
        "choices": [choice],
        "usage": request.usage(&content, stats),
    }))
    .into_response()
}

/// What a valid request asks for.
#[derive(Debug)]
struct Request {
    /// The images, in their order; at least one.
    images: Vec<Vec<u8>>,
    fields: Vec<(String, String)>,
    /// Answer inside a Markdown fence (what models do without `response_format`).
    fenced: bool,
    /// `logprobs: true` was asked for.
    logprobs: bool,
    /// The prompt's text: system and user messages.
    prompt_text: String,
}

impl Request {
    /// The first image: a card's front.
    fn front(&self) -> &[u8] {
        self.images.first().map_or(&[], Vec::as_slice)
    }

    /// The `usage` of an answer with `content`: the prompt's text at about
    /// four characters a token (cached once seen), each image at 85 tokens
    /// and one per kilobyte, the answer at four characters a token. So the
    /// sums depend on the images and the answers, and a test can check
    /// them against [`Stats`].
    fn usage(&self, content: &str, stats: &Stats) -> Value {
        use sha2::Digest;
        let text = (self.prompt_text.len() / 4) as u64;
        let prompt = text
            + self
                .images
                .iter()
                .map(|i| 85 + (i.len() / 1000) as u64)
                .sum::<u64>();
        let completion = (content.len() / 4) as u64 + 1;
        let seen = !stats
            .prompts_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sha2::Sha256::digest(self.prompt_text.as_bytes()).into());
        let cached = if seen { text } else { 0 };
        stats.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        stats
            .completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
        stats
            .total_tokens
            .fetch_add(prompt + completion, Ordering::Relaxed);
        stats.cached_tokens.fetch_add(cached, Ordering::Relaxed);
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": prompt + completion,
               "prompt_tokens_details": {"cached_tokens": cached}})
    }
}

enum Rejection {
    Bad(String),
    NotFound(String),
}

impl From<String> for Rejection {
    fn from(s: String) -> Self {
        Self::Bad(s)
    }
}

impl From<&str> for Rejection {
    fn from(s: &str) -> Self {
        Self::Bad(s.to_owned())
    }
}

fn validate(body: &Value, config: &SimConfig) -> Result<Request, Rejection> {
    let model = body["model"].as_str().ok_or("`model` must be a string")?;
    if model != config.model {
        return Err(Rejection::NotFound(format!(
            "The model `{model}` does not exist"
        )));
    }
    if config.reasoning_model {
        if body.get("max_tokens").is_some() {
            return Err(
                "Unsupported parameter: 'max_tokens' is not supported with this model. \
                        Use 'max_completion_tokens' instead."
                    .into(),
            );
        }
        if body
            .get("temperature")
            .is_some_and(|t| t.as_f64() != Some(1.0))
        {
            return Err(
                "Unsupported value: 'temperature' does not support 0 with this model. \
                        Only the default (1) value is supported."
                    .into(),
            );
        }
    }
    if let Some(m) = body.get("max_completion_tokens") {
        m.as_u64()
            .filter(|m| *m > 0)
            .ok_or("`max_completion_tokens` must be a positive integer")?;
    }
    if let Some(t) = body.get("temperature") {
        t.as_f64()
            .filter(|t| (0.0..=2.0).contains(t))
            .ok_or("`temperature` must be 0–2")?;
    }
    if let Some(m) = body.get("max_tokens") {
        m.as_u64()
            .filter(|m| *m > 0)
            .ok_or("`max_tokens` must be a positive integer")?;
    }
    let messages = body["messages"]
        .as_array()
        .ok_or("`messages` must be an array")?;
    let mut images = Vec::new();
    let mut user_text = String::new();
    let mut system_text = String::new();
    for m in messages {
        match m["role"].as_str() {
            Some("system") => {
                system_text.push_str(
                    m["content"]
                        .as_str()
                        .ok_or("a system message's content must be a string")?,
                );
            }
            Some("user") => {
                let parts = m["content"]
                    .as_array()
                    .ok_or("the user message's content must be an array of parts")?;
                for part in parts {
                    match part["type"].as_str() {
                        Some("text") => user_text
                            .push_str(part["text"].as_str().ok_or("a text part needs `text`")?),
                        Some("image_url") => {
                            let url = part["image_url"]["url"]
                                .as_str()
                                .ok_or("an image_url part needs `image_url.url`")?;
                            images.push(decode_data_url(url)?);
                        }
                        other => return Err(format!("unknown content part type {other:?}").into()),
                    }
                }
            }
            other => return Err(format!("unexpected message role {other:?}").into()),
        }
    }
    if images.is_empty() {
        return Err("no image_url part in the user message".into());
    }
    if images.len() > config.max_images {
        return Err(format!(
            "At most {} image(s) may be provided in one prompt.",
            config.max_images
        )
        .into());
    }
    let (fields, fenced) = match body.get("response_format") {
        None => (fields_from_text(&user_text), true),
        Some(rf) => match rf["type"].as_str() {
            Some("json_schema") => {
                if config.reject_json_schema {
                    return Err(
                        "response_format `json_schema` is not supported by this server"
                            .to_owned()
                            .into(),
                    );
                }
                (fields_from_schema(&rf["json_schema"])?, false)
            }
            Some("json_object") => (fields_from_text(&user_text), false),
            other => return Err(format!("unknown response_format type {other:?}").into()),
        },
    };
    if fields.is_empty() {
        return Err("the request names no fields to extract".to_owned().into());
    }
    let logprobs = body.get("logprobs").is_some_and(|l| l == true);
    if logprobs && config.reject_logprobs {
        return Err("logprobs are not supported by this model".to_owned().into());
    }
    Ok(Request {
        images,
        fields,
        fenced,
        logprobs,
        prompt_text: system_text + &user_text,
    })
}

fn decode_data_url(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or("image_url must be a data: URL")?;
    let (mime, data) = rest
        .split_once(";base64,")
        .ok_or("the data URL must be base64")?;
    if !["image/jpeg", "image/png", "image/webp"].contains(&mime) {
        return Err(format!("unsupported image type {mime}"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("bad base64 in the data URL: {e}"))?;
    let magic_ok = match mime {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG"),
        _ => bytes.len() > 12 && &bytes[8..12] == b"WEBP",
    };
    if !magic_ok {
        return Err(format!("the data URL does not hold a {mime} image"));
    }
    Ok(bytes)
}

/// Fields from a strict-mode `json_schema`, checking the rules strict mode
/// imposes (object, every property required, no additional properties).
fn fields_from_schema(js: &Value) -> Result<Vec<(String, String)>, String> {
    let name = js["name"].as_str().ok_or("json_schema.name is required")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("json_schema.name must match ^[a-zA-Z0-9_-]+$".into());
    }
    let schema = &js["schema"];
    if schema["type"] != "object" {
        return Err("json_schema.schema must be an object schema".into());
    }
    if schema["additionalProperties"] != false {
        return Err("strict mode needs additionalProperties: false".into());
    }
    let props = schema["properties"]
        .as_object()
        .ok_or("json_schema.schema.properties is required")?;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .ok_or("strict mode needs `required`")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut fields = Vec::new();
    for (name, p) in props {
        if !required.contains(&name.as_str()) {
            return Err(format!(
                "strict mode needs every property required; `{name}` is not"
            ));
        }
        let ty = match &p["type"] {
            Value::Array(t) => t
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string"),
            Value::String(t) => t.as_str(),
            _ => return Err(format!("property `{name}` has no type")),
        };
        fields.push((name.clone(), ty.to_owned()));
    }
    Ok(fields)
}

/// Fields from the prompt text's `- name (type...)` lines, for requests
/// without a schema.
fn fields_from_text(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(" (")?;
            let phrase = rest.split(')').next()?;
            let ty = match phrase {
                "whole number" => "integer",
                "number" => "number",
                "true or false" => "boolean",
                "list of text" => "array",
                _ => "string",
            };
            Some((name.to_owned(), ty.to_owned()))
        })
        .collect()
}

fn is_bad_image(image: &[u8], rate: f64) -> bool {
    image_share(image, 0) < rate
}

/// A number in 0..1 fixed by the image's content, one per `salt`, so each
/// simulated fault picks its own images, the same ones every time.
fn image_share(image: &[u8], salt: usize) -> f64 {
    let h = Sha256::digest(image);
    let v = u16::from_be_bytes([h[30 - 2 * salt], h[31 - 2 * salt]]);
    f64::from(v) / 65536.0
}

/// The simulator's answer for an image: a pure function of the image bytes
/// and the fields, so a test can compute what every card must contain.
pub fn answer_for(image: &[u8], fields: &[(String, String)]) -> Map<String, Value> {
    let image_hash = Sha256::digest(image);
    fields
        .iter()
        .map(|(name, ty)| {
            let mut h = Sha256::new();
            h.update(image_hash);
            h.update(name.as_bytes());
            let d = h.finalize();
            let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
            let tag = format!("{:02x}{:02x}{:02x}{:02x}", d[8], d[9], d[10], d[11]);
            let value = match ty.as_str() {
                "integer" => json!(1000 + n % 1000),
                "number" => json!((n % 100_000) as f64 / 100.0),
                "boolean" => json!(n % 2 == 0),
                "array" => json!([format!("{name}-{tag}-a"), format!("{name}-{tag}-b")]),
                _ => json!(format!("{name}-{tag}")),
            };
            (name.clone(), value)
        })
        .collect()
}

/// The answer for a card of [`SimConfig::answers`]: its own value of each
/// field asked for (numbers as numbers where the schema wants them), null
/// where the card has none.
fn answer_from(truth: &Map<String, Value>, fields: &[(String, String)]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(name, ty)| {
            let value = match (truth.get(name), ty.as_str()) {
                (None, _) => Value::Null,
                (Some(Value::String(s)), "integer") => {
                    s.parse::<i64>().map_or(Value::Null, Value::from)
                }
                (Some(Value::String(s)), "number") => {
                    s.parse::<f64>().map_or(Value::Null, Value::from)
                }
                (Some(v), _) => v.clone(),
            };
            (name.clone(), value)
        })
        .collect()
}

/// The fields of the schema that are text and hold a text value.
fn text_fields<'a>(fields: &'a [(String, String)], values: &Map<String, Value>) -> Vec<&'a String> {
    fields
        .iter()
        .filter(|(name, ty)| ty == "string" && values.get(name).is_some_and(Value::is_string))
        .map(|(name, _)| name)
        .collect()
}

/// Replaces one text value of a card of [`SimConfig::answers`] with the
/// same field's value on another card of the table, different from this
/// one's: the most plausible invention there is. Returns the field and
/// the made-up value.
fn invent_from(
    answers: &std::collections::BTreeMap<String, Map<String, Value>>,
    sha: &str,
    fields: &[(String, String)],
    values: &mut Map<String, Value>,
) -> Option<(String, String)> {
    let text_fields = text_fields(fields, values);
    let seed = Sha256::digest(sha.as_bytes());
    let pick = *text_fields.get(usize::from(seed[0]) % text_fields.len().max(1))?;
    let own = values.get(pick).cloned();
    let others: Vec<&str> = answers
        .iter()
        .filter(|(other, _)| other.as_str() != sha)
        .filter_map(|(_, card)| card.get(pick)?.as_str())
        .filter(|v| Some(Value::String((*v).to_owned())) != own)
        .collect();
    let n = u64::from_be_bytes(seed[1..9].try_into().expect("8 bytes"));
    let made_up = (*others.get((n % others.len().max(1) as u64) as usize)?).to_owned();
    values.insert(pick.clone(), Value::String(made_up.clone()));
    Some((pick.clone(), made_up))
}

/// Replaces one text value of `values` with a plausible one of another
/// card; returns the field and the made-up value.
fn invent(
    image: &[u8],
    fields: &[(String, String)],
    values: &mut Map<String, Value>,
) -> Option<(String, String)> {
    let text_fields = text_fields(fields, values);
    let pick = text_fields.get((image_share(image, 4) * text_fields.len() as f64) as usize)?;
    let mut other = image.to_vec();
    other.extend_from_slice(b"another card");
    let made_up = answer_for(&other, fields).remove(*pick)?;
    let made_up = made_up.as_str()?.to_owned();
    values.insert((*pick).clone(), Value::String(made_up.clone()));
    Some(((*pick).clone(), made_up))
}

/// The answer as tokens of about four characters with their
/// log-probabilities: sure ones (0.93–0.999), and unsure ones (0.2–0.45)
/// where the bytes `unsure` hold a made-up value.
fn token_logprobs(content: &str, unsure: Option<(usize, usize)>, image: &[u8]) -> Vec<Value> {
    let seed = Sha256::digest(image);
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut chars = content.char_indices().peekable();
    while chars.peek().is_some() {
        let end = chars
            .nth(3)
            .map_or(content.len(), |(i, c)| i + c.len_utf8());
        let text = &content[start..end];
        let jitter = f64::from(seed[tokens.len() % 32]) / 255.0;
        let p = match unsure {
            Some((a, b)) if start < b && end > a => 0.2 + 0.25 * jitter,
            _ => 0.93 + 0.069 * jitter,
        };
        tokens.push(json!({"token": text, "logprob": p.ln(), "bytes": text.as_bytes()}));
        start = end;
    }
    tokens
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether [`SimConfig::bad_answer_rate`] makes this image's answer unusable.
pub fn answers_badly(image: &[u8], config: &SimConfig) -> bool {
    is_bad_image(image, config.bad_answer_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(response_format: Value) -> Value {
        let jpeg = base64::engine::general_purpose::STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0]);
        json!({
            "model": "sim-vlm",
            "temperature": 0,
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "extract"},
                {"role": "user", "content": [
                    {"type": "text", "text": "- title (text)\n- year (whole number)"},
                    {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{jpeg}")}},
                ]},
            ],
            "response_format": response_format,
        })
    }

    fn strict_schema() -> Value {
        json!({"type": "json_schema", "json_schema": {"name": "card_fields", "strict": true, "schema": {
            "type": "object",
            "properties": {"title": {"type": ["string", "null"]}, "year": {"type": ["integer", "null"]}},
            "required": ["title", "year"],
            "additionalProperties": false,
        }}})
    }

    fn check(body: &Value) -> Result<Request, String> {
        validate(body, &SimConfig::default()).map_err(|r| match r {
            Rejection::Bad(m) | Rejection::NotFound(m) => m,
        })
    }

    #[test]
    fn accepts_a_well_formed_request_in_every_mode() {
        let r = check(&request(strict_schema())).unwrap();
        assert_eq!(
            r.fields,
            [
                ("title".into(), "string".into()),
                ("year".into(), "integer".into())
            ]
        );
        assert!(!r.fenced);
        let r = check(&request(json!({"type": "json_object"}))).unwrap();
        assert_eq!(
            r.fields,
            [
                ("title".into(), "string".into()),
                ("year".into(), "integer".into())
            ]
        );
        let mut plain = request(Value::Null);
        plain.as_object_mut().unwrap().remove("response_format");
        assert!(check(&plain).unwrap().fenced);
    }

    #[test]
    fn refuses_what_a_strict_server_refuses() {
        let mut cases: Vec<(Value, &str)> = Vec::new();
        let mut r = request(strict_schema());
        r["messages"][1]["content"][1]["image_url"]["url"] =
            json!("https://example.invalid/card.jpg");
        cases.push((r, "data: URL"));
        let mut r = request(strict_schema());
        r["messages"][1]["content"][1]["image_url"]["url"] =
            json!("data:image/jpeg;base64,aGVsbG8=");
        cases.push((r, "does not hold"));
        let mut r = request(strict_schema());
        r["messages"][1]["content"].as_array_mut().unwrap().pop();
        cases.push((r, "no image_url"));
        let mut r = request(strict_schema());
        r["response_format"]["json_schema"]["schema"]["required"] = json!(["title"]);
        cases.push((r, "every property required"));
        let mut r = request(strict_schema());
        r["response_format"]["json_schema"]["schema"]["additionalProperties"] = json!(true);
        cases.push((r, "additionalProperties"));
        let mut r = request(strict_schema());
        r["messages"][1]["content"] = json!("a string, not parts");
        cases.push((r, "array of parts"));
        let mut r = request(strict_schema());
        r["temperature"] = json!("hot");
        cases.push((r, "temperature"));
        for (body, want) in cases {
            let err = check(&body).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        let mut r = request(strict_schema());
        r["model"] = json!("gpt-unknown");
        assert!(matches!(
            validate(&r, &SimConfig::default()),
            Err(Rejection::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn several_images_are_answered_from_the_front_and_all_counted() {
        let config = SimConfig {
            keep_images: 4,
            max_images: 2,
            latency: Duration::ZERO,
            ..Default::default()
        };
        let (app, stats) = router(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/v1/chat/completions",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (front, back) = (
            [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[1; 3000]].concat(),
            [&[0xFF, 0xD8, 0xFF, 0xE1][..], &[2; 5000]].concat(),
        );
        let part = |bytes: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            json!({"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{b64}")}})
        };
        let with = |images: &[&[u8]]| {
            let mut body = request(strict_schema());
            let content = body["messages"][1]["content"].as_array_mut().unwrap();
            content.truncate(1);
            content.extend(images.iter().map(|i| part(i)));
            body
        };
        let client = reqwest::Client::new();
        let send = |body: Value| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let res = client.post(&url).json(&body).send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let (status, one) = send(with(&[&front])).await;
        assert_eq!(status, 200, "{one}");
        let (status, two) = send(with(&[&front, &back])).await;
        assert_eq!(status, 200, "{two}");
        // The answer is the front's; the back adds its tokens.
        let fields = [
            ("title".to_owned(), "string".to_owned()),
            ("year".to_owned(), "integer".to_owned()),
        ];
        let answer: Value =
            serde_json::from_str(two["choices"][0]["message"]["content"].as_str().unwrap())
                .unwrap();
        assert_eq!(answer, Value::Object(answer_for(&front, &fields)));
        let prompt = |v: &Value| v["usage"]["prompt_tokens"].as_u64().unwrap();
        assert_eq!(prompt(&two) - prompt(&one), 85 + 5);
        // Three images are over the limit of two, worded as vLLM words it.
        let (status, over) = send(with(&[&front, &back, &back])).await;
        assert_eq!(status, 400);
        assert!(
            over["error"]["message"]
                .as_str()
                .unwrap()
                .contains("At most 2 image(s)"),
            "{over}"
        );
        assert_eq!(stats.images.load(Ordering::Relaxed), 3);
        let per_request = stats.images_per_request.lock().unwrap().clone();
        assert_eq!(
            per_request.into_iter().collect::<Vec<_>>(),
            [(1, 1), (2, 1)]
        );
        let requests = stats.recent_requests.lock().unwrap().clone();
        assert_eq!(
            requests,
            [
                vec![hex_sha256(&front)],
                vec![hex_sha256(&front), hex_sha256(&back)]
            ]
        );
        assert_eq!(stats.recent_images.lock().unwrap().len(), 3);
    }

    #[test]
    fn answers_are_a_pure_function_of_image_and_fields() {
        let fields = vec![
            ("title".to_owned(), "string".to_owned()),
            ("n".to_owned(), "integer".to_owned()),
        ];
        assert_eq!(answer_for(b"one", &fields), answer_for(b"one", &fields));
        assert_ne!(answer_for(b"one", &fields), answer_for(b"two", &fields));
        assert!(answer_for(b"one", &fields)["n"].is_u64());
    }
}
