//! The cardex batch runner, apart from any HTTP: it claims pending cards of
//! running batches from the store, prepares their images on bounded
//! blocking threads, sends them through each batch's engine within the
//! engine's request limit ([`limit`]), commits the outcomes in groups, and
//! tells watchers through the progress hub ([`hub`]). `cardex serve` and
//! `cardex extract` start it the same way ([`Runner::new`], then
//! [`Runner::run`]); [`intake`] is how images enter an open batch.

pub mod check;
mod engines;
pub mod hub;
pub mod intake;
pub mod limit;
pub mod pool;
mod runner;

#[cfg(feature = "ocr")]
pub use cardex_engine::ocr::ensure_openmp_thread_limit;
pub use check::{CrossCheck, ReadsText};
pub use engines::{CrossCheckMode, EngineConfig, Engines, OcrConfig, configured, cross_check};
pub use hub::Hub;
pub use limit::Limiter;
pub use pool::{EndpointStatus, Pool};
pub use runner::{
    BUDGET_REACHED, DEFAULT_LOW_CONFIDENCE, Runner, RunnerConfig, batch_cost, is_priced,
};
