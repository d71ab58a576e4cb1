//! The OpenAI-compatible engine: `POST {base}/chat/completions` with the
//! card as a base64 data URL and the schema as `response_format`.
//!
//! Servers differ in what they accept. The first request asks for
//! `json_schema` (strict); a 400 that names `response_format` drops to
//! `json_object`, then to a plain request for JSON. A 400 that refuses
//! `max_tokens` or `temperature` (OpenAI's reasoning models) is asked again
//! with `max_completion_tokens` and no temperature. Either way the engine
//! keeps using what worked.
//!
//! An answer is read within [`MAX_ANSWER_BYTES`], so a runaway server
//! cannot fill memory; one cut off at the token limit (`finish_reason:
//! "length"`) and a refusal are clear, permanent failures of the card.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cardex_core::flag::repeats_itself;
use cardex_core::{Flag, FlagCode};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::answer::{AnswerError, CompiledPrompt};
use crate::confidence;
use crate::engine::{CheckFailed, Engine, EngineError, Extraction, Unavailable};
use crate::prepare::PreparedImage;
use cardex_core::Usage;

/// How to reach a model server.
#[derive(Clone)]
pub struct VlmConfig {
    /// Base URL, e.g. `http://localhost:8000/v1`.
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Bearer key, if any. Never logged.
    pub api_key: Option<String>,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole answer.
    pub request_timeout: Duration,
    /// Bound on generated tokens.
    pub max_tokens: u32,
}

impl std::fmt::Debug for VlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl VlmConfig {
    /// A config with the default timeouts (connect 10 s, request 120 s) and
    /// a 2,048-token answer bound.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_tokens: 2048,
        }
    }
}

/// `response_format` variants, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// `{"type": "json_schema", "json_schema": {name, schema, strict: true}}`.
    JsonSchema = 0,
    /// `{"type": "json_object"}`.
    JsonObject = 1,
    /// No `response_format`; the prompt alone asks for JSON.
    Plain = 2,
}

impl ResponseMode {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::JsonSchema,
            1 => Self::JsonObject,
            _ => Self::Plain,
        }
    }

    /// The name results' provenance gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObject => "json_object",
            Self::Plain => "plain",
        }
    }

    fn weaker(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonObject),
            Self::JsonObject => Some(Self::Plain),
            Self::Plain => None,
        }
    }
}

/// The longest answer read from a model server; more fails the attempt.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The longest wait a server's `Retry-After` may impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The OpenAI-compatible engine.
#[derive(Debug)]
pub struct VlmEngine {
    client: reqwest::Client,
    config: VlmConfig,
    mode: AtomicU8,
    /// The server wants `max_completion_tokens` and no `temperature`.
    completion_tokens: AtomicBool,
    /// The server refused `logprobs`: values get no confidence.
    no_logprobs: AtomicBool,
}

impl VlmEngine {
    /// A client for `config`.
    pub fn new(config: VlmConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(512)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            config,
            mode: AtomicU8::new(ResponseMode::JsonSchema as u8),
            completion_tokens: AtomicBool::new(false),
            no_logprobs: AtomicBool::new(false),
        })
    }

    /// The `response_format` mode in use now.
    pub fn mode(&self) -> ResponseMode {
        ResponseMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// The request body for one card: `response_format` as `mode` says,
    /// the token bound as `max_completion_tokens` (without a temperature)
    /// when `completion_tokens`, else as `max_tokens`, and `logprobs`
    /// when asked for.
    /// A two-sided card's two images follow the text in order, front
    /// first, and the text says so.
    pub fn request_body(
        &self,
        images: &[PreparedImage],
        prompt: &CompiledPrompt,
        mode: ResponseMode,
        completion_tokens: bool,
        logprobs: bool,
    ) -> Value {
        let p = &prompt.prompt;
        let mut content = vec![json!({"type": "text", "text": p.user_for(images.len())})];
        for image in images {
            let data_url = format!(
                "data:{};base64,{}",
                image.mime,
                base64::engine::general_purpose::STANDARD.encode(&image.bytes)
            );
            content.push(json!({"type": "image_url", "image_url": {"url": data_url}}));
        }
        let mut body = json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": p.system},
                {"role": "user", "content": content},
            ],
        });
        if logprobs {
            body["logprobs"] = json!(true);
        }
        if completion_tokens {
            body["max_completion_tokens"] = json!(self.config.max_tokens);
        } else {
            body["temperature"] = json!(0);
            body["max_tokens"] = json!(self.config.max_tokens);
        }
        match mode {
            ResponseMode::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": cardex_core::prompt::SCHEMA_NAME,
                        "schema": p.json_schema,
                        "strict": true,
                    },
                });
            }
            ResponseMode::JsonObject => body["response_format"] = json!({"type": "json_object"}),
            ResponseMode::Plain => {}
        }
        body
    }

    /// Whether the server answers `GET {base}/models`.
    pub async fn check_reachable(&self) -> Result<(), CheckFailed> {
        let mut req = self
            .client
            .get(format!("{}/models", self.config.base_url))
            .timeout(Duration::from_secs(5));
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(CheckFailed {
                message: format!("the server answered {}", res.status()),
                answered: res.status().as_u16() < 500,
            }),
            Err(e) => Err(CheckFailed {
                message: describe_reqwest_error(&e),
                answered: false,
            }),
        }
    }

    async fn call(
        &self,
        images: &[PreparedImage],
        prompt: &CompiledPrompt,
    ) -> Result<Extraction, EngineError> {
        let mut mode = self.mode();
        let mut completion_tokens = self.completion_tokens.load(Ordering::Relaxed);
        let mut logprobs = !self.no_logprobs.load(Ordering::Relaxed);
        let mut requests = 0;
        loop {
            let started = Instant::now();
            requests += 1;
            let mut req = self
                .client
                .post(format!("{}/chat/completions", self.config.base_url))
                .json(&self.request_body(images, prompt, mode, completion_tokens, logprobs));
            if let Some(key) = &self.config.api_key {
                req = req.bearer_auth(key);
            }
            let res = req.send().await.map_err(|e| EngineError::Transient {
                message: describe_reqwest_error(&e),
                retry_after: None,
                cause: failure_cause(&e),
            })?;
            let status = res.status();
            let retry_after = retry_after(res.headers(), SystemTime::now());
            let text = read_body(res).await?;
            if status.is_success() {
                let mut read = read_completion(&text, prompt, started.elapsed());
                match &mut read {
                    Ok(x) => {
                        x.usage.requests = requests;
                        x.response_mode = Some(mode.name());
                    }
                    Err(
                        EngineError::BadAnswer { usage, .. } | EngineError::Permanent { usage, .. },
                    ) => usage.requests = requests,
                    Err(_) => {}
                }
                return read;
            }
            if status == StatusCode::BAD_REQUEST
                && logprobs
                && text.to_ascii_lowercase().contains("logprobs")
            {
                if !self.no_logprobs.swap(true, Ordering::Relaxed) {
                    tracing::warn!("the model server refused logprobs; values get no confidence");
                }
                logprobs = false;
                continue;
            }
            if status == StatusCode::BAD_REQUEST
                && !completion_tokens
                && refuses_token_parameters(&text)
            {
                if !self.completion_tokens.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the model server refused max_tokens/temperature; asking with max_completion_tokens"
                    );
                }
                completion_tokens = true;
                continue;
            }
            if status == StatusCode::BAD_REQUEST
                && mentions_response_format(&text)
                && let Some(weaker) = mode.weaker()
            {
                tracing::warn!(from = ?mode, to = ?weaker, "the model server refused this response_format; falling back");
                mode = weaker;
                self.mode.store(mode as u8, Ordering::Relaxed);
                continue;
            }
            let excerpt = excerpt(&text, 300);
            return Err(match status.as_u16() {
                401 | 403 => EngineError::Config {
                    message: format!("the model server refused the API key ({status}): {excerpt}"),
                },
                404 => EngineError::Config {
                    message: format!(
                        "the model server does not know model {:?} or the URL is wrong ({status}): {excerpt}",
                        self.config.model
                    ),
                },
                408 | 429 | 500..=599 => EngineError::Transient {
                    message: format!("the model server answered {status}: {excerpt}"),
                    retry_after,
                    cause: match status.as_u16() {
                        408 | 429 | 503 => Unavailable::Busy,
                        // A gateway's timeout: the server behind it did
                        // not answer in time.
                        504 => Unavailable::TimedOut,
                        _ => Unavailable::Failed,
                    },
                },
                _ => EngineError::Permanent {
                    code: "model_rejected_request",
                    message: format!("the model server refused the request ({status}): {excerpt}"),
                    usage: Usage {
                        requests,
                        ..Usage::default()
                    },
                },
            });
        }
    }
}

impl Engine for VlmEngine {
    fn name(&self) -> &str {
        "vlm"
    }

    fn extract<'a>(
        &'a self,
        images: &'a [PreparedImage],
        prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        Box::pin(self.call(images, prompt))
    }

    fn model(&self) -> Option<&str> {
        Some(&self.config.model)
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.config.base_url)
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CheckFailed>> {
        Box::pin(self.check_reachable())
    }
}

/// Reads a chat-completions response body: the message content (a string
/// or a list of text parts), the JSON object in it, coerced and validated
/// against the prompt's schema. Public for the fuzz target.
pub fn read_completion(
    text: &str,
    prompt: &CompiledPrompt,
    elapsed: Duration,
) -> Result<Extraction, EngineError> {
    let body: Value = serde_json::from_str(text).map_err(|e| EngineError::BadAnswer {
        message: format!("the response is not JSON: {e}"),
        raw: excerpt(text, 2000),
        usage: Usage::default(),
    })?;
    // What the answer cost, usable or not.
    let usage = Usage {
        requests: 1,
        ms: elapsed.as_millis() as u64,
        ..Usage::from_openai(&body["usage"]).unwrap_or_default()
    };
    let bad = |message: String| EngineError::BadAnswer {
        message,
        raw: excerpt(text, 2000),
        usage,
    };
    let message = &body["choices"][0]["message"];
    if let Some(refusal) = message["refusal"].as_str().filter(|r| !r.trim().is_empty()) {
        return Err(EngineError::Permanent {
            code: "model_refused",
            message: format!(
                "the model refused to read the card: {}",
                excerpt(refusal, 300)
            ),
            usage,
        });
    }
    // `content` is a string, or (some servers) a list of text parts.
    let content = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => return Err(bad("the response has no message content".into())),
    };
    let cut_off = body["choices"][0]["finish_reason"] == "length";
    let names: Vec<&str> = prompt.fields.iter().map(|f| f.name.as_str()).collect();
    match prompt.read_answer(&content) {
        Ok(answer) => {
            let mut flags = answer.flags;
            for (name, value) in &answer.values {
                let looping = match value {
                    Value::String(s) => repeats_itself(s),
                    Value::Array(items) => {
                        items.iter().filter_map(Value::as_str).any(repeats_itself)
                    }
                    _ => false,
                };
                if looping {
                    flags.push(Flag::on(
                        name,
                        FlagCode::Repetition,
                        "the model repeated itself in this value; it is likely wrong",
                    ));
                }
            }
            if cut_off {
                // Whole enough to read, but the model had more to say.
                flags.push(Flag::row(
                    FlagCode::TruncatedAnswer,
                    "the model's answer was cut off at the token limit; some values may be missing",
                ));
            }
            let confidence = confidence::from_logprobs(
                &content,
                &body["choices"][0]["logprobs"]["content"],
                &names,
            );
            Ok(Extraction {
                fields: answer.values,
                raw: content,
                usage,
                elapsed,
                response_mode: None,
                flags,
                confidence,
                text: None,
            })
        }
        Err(_) if cut_off => Err(EngineError::Permanent {
            code: "answer_truncated",
            message: "the model's answer was cut off at the token limit before it was complete; \
                      raise --vlm-max-tokens"
                .into(),
            usage,
        }),
        Err(e @ (AnswerError::NoJson | AnswerError::Invalid(_))) => Err(EngineError::BadAnswer {
            message: e.to_string(),
            raw: excerpt(&content, 2000),
            usage,
        }),
    }
}

fn mentions_response_format(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    [
        "response_format",
        "json_schema",
        "json schema",
        "guided",
        "structured output",
    ]
    .iter()
    .any(|w| b.contains(w))
}

/// Whether a 400 says the server does not take `max_tokens` or a
/// `temperature` other than its default (OpenAI's reasoning models).
fn refuses_token_parameters(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    (b.contains("max_tokens") || b.contains("temperature"))
        && (b.contains("unsupported")
            || b.contains("not supported")
            || b.contains("max_completion_tokens"))
}

/// Reads a response body of at most [`MAX_ANSWER_BYTES`], chunk by chunk.
async fn read_body(mut res: reqwest::Response) -> Result<String, EngineError> {
    let too_large = || EngineError::BadAnswer {
        message: format!(
            "the model server's answer is larger than {} MiB; it was not read",
            MAX_ANSWER_BYTES / (1024 * 1024)
        ),
        raw: String::new(),
        usage: Usage::default(),
    };
    if res
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = res.chunk().await.map_err(|e| EngineError::Transient {
            message: format!("the answer was cut off: {}", describe_reqwest_error(&e)),
            retry_after: None,
            cause: if e.is_timeout() {
                Unavailable::TimedOut
            } else {
                Unavailable::Lost
            },
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// How long the server asks us to wait: `Retry-After` in seconds (any
/// finite, non-negative number) or as an HTTP date, at most
/// [`MAX_RETRY_AFTER`]. Nonsense (`-1`, `NaN`) is ignored; `inf` or `1e20`
/// is taken as "as long as we wait at most".
fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<f64>() {
        Ok(secs) if secs >= 0.0 => {
            Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok()?
        }
        Ok(_) => return None,
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// What a request that got no answer says about the server.
fn failure_cause(e: &reqwest::Error) -> Unavailable {
    // A connect timeout is both: a server too busy to accept is a sign to
    // send less, as any timeout.
    if e.is_timeout() {
        Unavailable::TimedOut
    } else if e.is_connect() {
        Unavailable::Unreachable
    } else {
        Unavailable::Lost
    }
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the model server did not answer in time".into()
    } else if e.is_connect() {
        "could not connect to the model server".into()
    } else {
        format!("request to the model server failed: {e}")
    }
}

/// At most `max` characters of `s`, marked when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardex_core::{Field, FieldType};

    fn engine() -> VlmEngine {
        VlmEngine::new(VlmConfig::new("http://127.0.0.1:9/v1/", "m", None)).unwrap()
    }

    fn image() -> PreparedImage {
        PreparedImage {
            bytes: vec![0xFF, 0xD8, 0xFF],
            mime: "image/jpeg",
            width: 1,
            height: 1,
            passthrough: true,
        }
    }

    #[test]
    fn request_follows_the_chat_completions_format() {
        let prompt = CompiledPrompt::new(&[Field::new("title", FieldType::Text)]).unwrap();
        let body =
            engine().request_body(&[image()], &prompt, ResponseMode::JsonSchema, false, true);
        assert_eq!(body["logprobs"], true);
        assert_eq!(body["model"], "m");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"][0]["type"], "text");
        assert_eq!(body["messages"][1]["content"][1]["type"], "image_url");
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/"
        );
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            body["response_format"]["json_schema"]["name"],
            "card_fields"
        );
        assert_eq!(
            body["response_format"]["json_schema"]["schema"],
            prompt.prompt.json_schema
        );
        let body =
            engine().request_body(&[image()], &prompt, ResponseMode::JsonObject, false, false);
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        let body = engine().request_body(&[image()], &prompt, ResponseMode::Plain, false, false);
        assert!(body.get("logprobs").is_none());
        assert!(body.get("response_format").is_none());
        let body = engine().request_body(&[image()], &prompt, ResponseMode::Plain, true, false);
        assert_eq!(body["max_completion_tokens"], 2048);
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
    }

    #[test]
    fn a_two_sided_card_sends_both_images_in_order_and_says_which_is_which() {
        let prompt = CompiledPrompt::new(&[Field::new("title", FieldType::Text)]).unwrap();
        let back = PreparedImage {
            bytes: vec![0x89, b'P', b'N', b'G'],
            mime: "image/png",
            ..image()
        };
        let body = engine().request_body(
            &[image(), back],
            &prompt,
            ResponseMode::JsonSchema,
            false,
            false,
        );
        let content = body["messages"][1]["content"].as_array().unwrap();
        assert_eq!(content.len(), 3);
        let text = content[0]["text"].as_str().unwrap();
        assert!(
            text.contains("the first image is its front, the second its back"),
            "{text}"
        );
        assert!(
            text.ends_with(prompt.prompt.user.as_str()),
            "the fields follow: {text}"
        );
        assert_eq!(
            content[1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/"
        );
        assert!(
            content[2]["image_url"]["url"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
        // One image: the prompt as it always was.
        let one =
            engine().request_body(&[image()], &prompt, ResponseMode::JsonSchema, false, false);
        assert_eq!(
            one["messages"][1]["content"][0]["text"],
            prompt.prompt.user.as_str()
        );
    }

    #[test]
    fn retry_after_is_read_safely_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let wait = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
            retry_after(&h, now)
        };
        assert_eq!(wait("3"), Some(Duration::from_secs(3)));
        assert_eq!(wait("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(wait("inf"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("1e20"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("-1"), None);
        assert_eq!(wait("NaN"), None);
        assert_eq!(wait("soon"), None);
        let in_90s = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(wait(&in_90s), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(wait(&past), Some(Duration::ZERO));
        let far = httpdate::fmt_http_date(now + Duration::from_secs(86_400));
        assert_eq!(wait(&far), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn cut_off_and_refused_answers_are_clear_failures() {
        let prompt = CompiledPrompt::new(&[Field::new("title", FieldType::Text)]).unwrap();
        let completion = |content: Value, finish: &str, refusal: Value| {
            json!({"choices": [{"finish_reason": finish,
                "message": {"role": "assistant", "content": content, "refusal": refusal}}]})
            .to_string()
        };
        let cut = completion(json!("{\"title\": \"Moby"), "length", Value::Null);
        match read_completion(&cut, &prompt, Duration::ZERO) {
            Err(EngineError::Permanent { code, .. }) => assert_eq!(code, "answer_truncated"),
            other => panic!("{other:?}"),
        }
        let whole = completion(json!("{\"title\": \"Moby\"}"), "length", Value::Null);
        let x = read_completion(&whole, &prompt, Duration::ZERO).unwrap();
        assert_eq!(x.flags[0].code, FlagCode::TruncatedAnswer);
        let refused = completion(Value::Null, "stop", json!("I can't help with that."));
        match read_completion(&refused, &prompt, Duration::ZERO) {
            Err(EngineError::Permanent { code, message, .. }) => {
                assert_eq!(code, "model_refused");
                assert!(message.contains("can't help"));
            }
            other => panic!("{other:?}"),
        }
        assert!(refuses_token_parameters(
            r#"{"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."}}"#
        ));
        assert!(!refuses_token_parameters(
            r#"{"error": {"message": "bad image"}}"#
        ));
    }

    #[test]
    fn excerpts_cut_on_character_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hi", 5), "hi");
    }
}
