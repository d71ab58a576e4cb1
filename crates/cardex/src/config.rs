//! Configuration of `cardex serve`: every flag has a `CARDEX_*` environment
//! variable and a key in the optional TOML file (`--config`). Precedence:
//! defaults < file < environment < flags. Clap resolves environment against
//! flags; the file only fills what neither gave.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// A value that must never be printed (API tokens and keys).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Reads a file key that may be one string or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

/// `--cross-check`: when a model's values are compared with the card's
/// own OCR text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossCheckArg {
    /// Whenever a model reads the cards and the OCR engine loads.
    #[default]
    Auto,
    /// Always with a model; a missing OCR engine stops the server.
    On,
    /// Never.
    Off,
}

impl From<CrossCheckArg> for cardex_server::CrossCheckMode {
    fn from(c: CrossCheckArg) -> Self {
        match c {
            CrossCheckArg::Auto => Self::Auto,
            CrossCheckArg::On => Self::On,
            CrossCheckArg::Off => Self::Off,
        }
    }
}

/// Flags of `cardex serve`; also the keys of the TOML file.
#[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Where the database and images live [default: ./cardex-data].
    #[arg(long, env = "CARDEX_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CARDEX_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on every /api route.
    #[arg(
        long,
        env = "CARDEX_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,
    /// Host names the server answers to besides localhost and IP addresses
    /// (its name behind a reverse proxy); `.example.org` allows every name
    /// under it. Comma-separated or repeated.
    #[arg(
        long,
        env = "CARDEX_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Web origins besides the server's own whose pages may use the API,
    /// e.g. https://cards.example.org for a reverse proxy. Comma-separated
    /// or repeated.
    #[arg(
        long,
        env = "CARDEX_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// OpenAI-compatible base URL, e.g. http://localhost:11434/v1 (Ollama).
    /// Repeat it (or separate with commas) for several replicas of the
    /// same model: each card goes to the one with the most room. In the
    /// file: `vlm_url = "..."` or `vlm_urls = ["...", "..."]`.
    #[arg(
        long,
        env = "CARDEX_VLM_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    #[serde(default, alias = "vlm_urls", deserialize_with = "one_or_many")]
    pub vlm_url: Option<Vec<String>>,
    /// Model name on that server.
    #[arg(long, env = "CARDEX_VLM_MODEL", value_name = "NAME")]
    pub vlm_model: Option<String>,
    /// API key for the model server.
    #[arg(
        long,
        env = "CARDEX_VLM_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub vlm_api_key: Option<Secret>,
    /// Fixed number of requests in flight to the model server; without
    /// it the number is found adaptively from measured throughput.
    #[arg(long, env = "CARDEX_VLM_CONCURRENCY", value_name = "N")]
    pub vlm_concurrency: Option<usize>,
    /// Most requests in flight the adaptive limit may reach [default: 256].
    #[arg(long, env = "CARDEX_VLM_MAX_CONCURRENCY", value_name = "N")]
    pub vlm_max_concurrency: Option<usize>,
    /// Seconds to wait for a connection to the model server [default: 10].
    #[arg(long, env = "CARDEX_VLM_CONNECT_TIMEOUT", value_name = "SECONDS")]
    pub vlm_connect_timeout: Option<u64>,
    /// Seconds to wait for one answer from the model server [default: 120].
    #[arg(long, env = "CARDEX_VLM_REQUEST_TIMEOUT", value_name = "SECONDS")]
    pub vlm_request_timeout: Option<u64>,
    /// Values whose confidence (0–1) is under this are flagged
    /// low_confidence [default: 0.6].
    #[arg(long, env = "CARDEX_LOW_CONFIDENCE", value_name = "0..1")]
    pub low_confidence: Option<f64>,
    /// Most tokens the model may generate for one card; an answer cut off
    /// there fails as `answer_truncated` [default: 2048].
    #[arg(long, env = "CARDEX_VLM_MAX_TOKENS", value_name = "N")]
    pub vlm_max_tokens: Option<u32>,
    /// What the model's prompt tokens cost, in US dollars per million;
    /// with --vlm-price-output, batches show their cost.
    #[arg(long, env = "CARDEX_VLM_PRICE_INPUT", value_name = "USD")]
    pub vlm_price_input: Option<f64>,
    /// What the model's generated tokens cost, in US dollars per million.
    #[arg(long, env = "CARDEX_VLM_PRICE_OUTPUT", value_name = "USD")]
    pub vlm_price_output: Option<f64>,
    /// Attempts per card before it fails [default: 5].
    #[arg(long, env = "CARDEX_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Longest image side sent to the model, in pixels [default: 1536].
    #[arg(long, env = "CARDEX_MAX_SIDE", value_name = "PIXELS")]
    pub max_side: Option<u32>,
    /// Tesseract language(s) of the OCR engine, e.g. eng or deu+eng [default: eng].
    #[arg(long, env = "CARDEX_OCR_LANG", value_name = "LANG")]
    pub ocr_lang: Option<String>,
    /// OCR worker threads, each with its own Tesseract [default: the cores].
    #[arg(long, env = "CARDEX_OCR_WORKERS", value_name = "N")]
    pub ocr_workers: Option<usize>,
    /// Cross-check a model's text values against the card's own OCR text
    /// and flag those not on the card (not_in_text); auto = whenever a
    /// model reads the cards and the OCR engine loads [default: auto].
    #[arg(long, env = "CARDEX_CROSS_CHECK", value_name = "auto|on|off")]
    pub cross_check: Option<CrossCheckArg>,
    /// Threads of the cross-check's OCR, at a lower CPU priority
    /// [default: half the cores, at least 1].
    #[arg(long, env = "CARDEX_CROSS_CHECK_WORKERS", value_name = "N")]
    pub cross_check_workers: Option<usize>,
    /// Largest accepted image file in bytes [default: 104857600 (100 MB)].
    #[arg(long, env = "CARDEX_MAX_FILE_BYTES", value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Largest upload request in bytes [default: 10737418240 (10 GiB)].
    #[arg(long, env = "CARDEX_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<u64>,
    /// Most pixels an image may declare [default: 100000000].
    #[arg(long, env = "CARDEX_MAX_PIXELS", value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
    /// Most pages one PDF or multi-page TIFF may have; a file with more
    /// is refused as a whole [default: 5000].
    #[arg(long, env = "CARDEX_MAX_PAGES", value_name = "N")]
    pub max_pages: Option<u64>,
    /// Folder of the built web UI [default: ./web/dist when present].
    #[arg(long, env = "CARDEX_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// Fills every value not given on the command line or in the
    /// environment from `file`.
    pub fn or(self, file: ServeArgs) -> ServeArgs {
        ServeArgs {
            data_dir: self.data_dir.or(file.data_dir),
            bind: self.bind.or(file.bind),
            api_token: self.api_token.or(file.api_token),
            allowed_hosts: self.allowed_hosts.or(file.allowed_hosts),
            allowed_origins: self.allowed_origins.or(file.allowed_origins),
            vlm_url: self.vlm_url.or(file.vlm_url),
            vlm_model: self.vlm_model.or(file.vlm_model),
            vlm_api_key: self.vlm_api_key.or(file.vlm_api_key),
            vlm_concurrency: self.vlm_concurrency.or(file.vlm_concurrency),
            vlm_max_concurrency: self.vlm_max_concurrency.or(file.vlm_max_concurrency),
            vlm_connect_timeout: self.vlm_connect_timeout.or(file.vlm_connect_timeout),
            vlm_request_timeout: self.vlm_request_timeout.or(file.vlm_request_timeout),
            max_attempts: self.max_attempts.or(file.max_attempts),
            vlm_max_tokens: self.vlm_max_tokens.or(file.vlm_max_tokens),
            vlm_price_input: self.vlm_price_input.or(file.vlm_price_input),
            vlm_price_output: self.vlm_price_output.or(file.vlm_price_output),
            low_confidence: self.low_confidence.or(file.low_confidence),
            max_side: self.max_side.or(file.max_side),
            ocr_lang: self.ocr_lang.or(file.ocr_lang),
            ocr_workers: self.ocr_workers.or(file.ocr_workers),
            cross_check: self.cross_check.or(file.cross_check),
            cross_check_workers: self.cross_check_workers.or(file.cross_check_workers),
            max_file_bytes: self.max_file_bytes.or(file.max_file_bytes),
            max_request_bytes: self.max_request_bytes.or(file.max_request_bytes),
            max_pixels: self.max_pixels.or(file.max_pixels),
            max_pages: self.max_pages.or(file.max_pages),
            web_dir: self.web_dir.or(file.web_dir),
        }
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> anyhow::Result<ServeArgs> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The data dir after defaults.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("cardex-data"))
    }

    /// The listen address after defaults.
    pub fn bind(&self) -> SocketAddr {
        self.bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The server's configuration after defaults; fails on incomplete VLM settings.
    pub fn server_config(&self) -> anyhow::Result<cardex_server::ServerConfig> {
        let vlm = match (&self.vlm_url, &self.vlm_model) {
            (None, None) => None,
            (Some(urls), Some(model)) => {
                let mut unique: Vec<&str> = Vec::new();
                for url in urls.iter().map(|u| u.trim().trim_end_matches('/')) {
                    anyhow::ensure!(!url.is_empty(), "--vlm-url is empty");
                    anyhow::ensure!(!unique.contains(&url), "--vlm-url {url} is given twice");
                    unique.push(url);
                }
                anyhow::ensure!(!unique.is_empty(), "--vlm-url needs a URL");
                let mut engine = cardex_server::EngineConfig::replicas(&unique, model);
                engine.api_key = self.vlm_api_key.clone().map(|s| s.0);
                engine.concurrency = self.vlm_concurrency;
                if let Some(n) = self.vlm_max_concurrency {
                    engine.max_concurrency = n;
                }
                if let Some(s) = self.vlm_connect_timeout {
                    engine.connect_timeout = Duration::from_secs(s);
                }
                if let Some(s) = self.vlm_request_timeout {
                    engine.request_timeout = Duration::from_secs(s);
                }
                if let Some(n) = self.vlm_max_tokens {
                    anyhow::ensure!(n >= 1, "--vlm-max-tokens must be at least 1");
                    engine.max_tokens = n;
                }
                Some(engine)
            }
            _ => anyhow::bail!("--vlm-url and --vlm-model go together: give both or neither"),
        };
        let defaults = cardex_server::Limits::default();
        let limits = cardex_server::Limits {
            max_file_bytes: self.max_file_bytes.unwrap_or(defaults.max_file_bytes),
            max_request_bytes: self.max_request_bytes.unwrap_or(defaults.max_request_bytes),
            max_pixels: self.max_pixels.unwrap_or(defaults.max_pixels),
            max_pages: self.max_pages.unwrap_or(defaults.max_pages),
            ..defaults
        };
        anyhow::ensure!(limits.max_pages >= 1, "--max-pages must be at least 1");
        let web_dir = self
            .web_dir
            .clone()
            .or_else(|| Some(PathBuf::from("web/dist")).filter(|d| d.join("index.html").is_file()));
        let mut runner = cardex_runner::RunnerConfig::default();
        runner.prepare.max_pixels = limits.max_pixels;
        if let Some(side) = self.max_side {
            anyhow::ensure!(side >= 64, "--max-side must be at least 64 pixels");
            runner.prepare.max_side = side;
        }
        if let Some(t) = self.low_confidence {
            anyhow::ensure!(
                (0.0..=1.0).contains(&t),
                "--low-confidence is between 0 and 1"
            );
            runner.low_confidence = t;
        }
        if let Some(n) = self.max_attempts {
            anyhow::ensure!(n >= 1, "--max-attempts must be at least 1");
            runner.retry.max_attempts = n;
        }
        runner.prices = match (self.vlm_price_input, self.vlm_price_output) {
            (None, None) => None,
            (Some(input), Some(output)) => {
                for (flag, price) in [("input", input), ("output", output)] {
                    anyhow::ensure!(
                        price.is_finite() && price >= 0.0,
                        "--vlm-price-{flag} is US dollars per million tokens, 0 or more"
                    );
                }
                Some(cardex_core::Prices { input, output })
            }
            _ => anyhow::bail!(
                "--vlm-price-input and --vlm-price-output go together: give both or neither"
            ),
        };
        let mut ocr = cardex_server::OcrConfig::default();
        if let Some(lang) = &self.ocr_lang {
            ocr.lang = lang.clone();
        }
        if let Some(n) = self.ocr_workers {
            anyhow::ensure!(n >= 1, "--ocr-workers must be at least 1");
            ocr.workers = n;
        }
        ocr.cross_check = self.cross_check.unwrap_or_default().into();
        if let Some(n) = self.cross_check_workers {
            anyhow::ensure!(n >= 1, "--cross-check-workers must be at least 1");
            ocr.check_workers = n;
        }
        Ok(cardex_server::ServerConfig {
            api_token: self.api_token.clone().map(|s| s.0),
            vlm,
            limits,
            web_dir,
            runner,
            ocr,
            web: cardex_server::WebAccess::new(
                self.allowed_hosts.as_deref().unwrap_or_default(),
                self.allowed_origins.as_deref().unwrap_or_default(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("cardex").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn file_fills_only_what_flags_left_open() {
        let file: ServeArgs = toml::from_str(
            "data_dir = \"/from/file\"\nbind = \"127.0.0.1:9000\"\nvlm_concurrency = 3\n",
        )
        .unwrap();
        let merged = parse(&["--bind", "127.0.0.1:7000"]).or(file);
        assert_eq!(merged.bind(), "127.0.0.1:7000".parse().unwrap());
        assert_eq!(merged.data_dir(), PathBuf::from("/from/file"));
        assert_eq!(merged.vlm_concurrency, Some(3));
    }

    #[test]
    fn defaults_apply_last() {
        let merged = parse(&[]).or(ServeArgs::default());
        assert_eq!(merged.bind(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(merged.data_dir(), PathBuf::from("cardex-data"));
        let config = merged.server_config().unwrap();
        assert!(config.vlm.is_none());
        assert_eq!(config.limits.max_file_bytes, 100 * 1024 * 1024);
        assert_eq!(config.limits.max_pages, 5000);
    }

    #[test]
    fn max_pages_from_the_file_or_a_flag() {
        let file: ServeArgs = toml::from_str("max_pages = 12\n").unwrap();
        let config = parse(&[]).or(file.clone()).server_config().unwrap();
        assert_eq!(config.limits.max_pages, 12);
        assert_eq!(config.limits.files().max_pages, 12);
        let config = parse(&["--max-pages", "3"])
            .or(file)
            .server_config()
            .unwrap();
        assert_eq!(config.limits.max_pages, 3);
        assert!(parse(&["--max-pages", "0"]).server_config().is_err());
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        assert!(toml::from_str::<ServeArgs>("bnd = \"x\"").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let args = parse(&["--api-token", "hunter2", "--vlm-api-key", "sk-secret"]);
        let shown = format!("{args:?} {:?}", args.server_config().unwrap());
        assert!(
            !shown.contains("hunter2") && !shown.contains("sk-secret"),
            "{shown}"
        );
    }

    #[test]
    fn vlm_needs_url_and_model() {
        assert!(
            parse(&["--vlm-url", "http://x/v1"])
                .server_config()
                .is_err()
        );
        let c = parse(&["--vlm-url", "http://x/v1/", "--vlm-model", "m"])
            .server_config()
            .unwrap();
        assert_eq!(c.vlm.as_ref().unwrap().base_urls, ["http://x/v1"]);
        assert_eq!(c.default_engine(), "vlm");
    }

    #[test]
    fn several_model_servers_from_flags_or_the_file() {
        let c = parse(&[
            "--vlm-url",
            "http://a/v1",
            "--vlm-url",
            "http://b/v1,http://c/v1/",
            "--vlm-model",
            "m",
        ])
        .server_config()
        .unwrap();
        assert_eq!(
            c.vlm.unwrap().base_urls,
            ["http://a/v1", "http://b/v1", "http://c/v1"]
        );
        for text in [
            "vlm_urls = [\"http://a/v1\", \"http://b/v1\"]\nvlm_model = \"m\"",
            "vlm_url = [\"http://a/v1\", \"http://b/v1\"]\nvlm_model = \"m\"",
        ] {
            let file: ServeArgs = toml::from_str(text).unwrap();
            let c = parse(&[]).or(file).server_config().unwrap();
            assert_eq!(c.vlm.unwrap().base_urls, ["http://a/v1", "http://b/v1"]);
        }
        let file: ServeArgs = toml::from_str("vlm_url = \"http://a/v1\"").unwrap();
        assert_eq!(file.vlm_url, Some(vec!["http://a/v1".to_owned()]));
        let twice = parse(&["--vlm-url", "http://a/v1,http://a/v1/", "--vlm-model", "m"]);
        let err = twice.server_config().unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }
}
