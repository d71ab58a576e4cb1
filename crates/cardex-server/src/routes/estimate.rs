//! `POST /api/batches/{id}/estimate`: what reading the whole batch will
//! likely take in tokens, dollars and time, from a few of its cards read
//! now through its engine, their results not kept (DESIGN §14).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cardex_core::Usage;
use cardex_engine::{CompiledPrompt, retry_attempts};
use futures_util::future::join_all;
use serde::Deserialize;
use utoipa::ToSchema;

use super::batch_id;
use crate::api::Estimate;
use crate::error::ErrorBody;
use crate::extract::{JsonObject, PathParams};
use crate::{ApiError, AppState};

/// Cards read for an estimate unless asked otherwise.
const DEFAULT_SAMPLE: u32 = 3;
/// Most cards an estimate reads.
const MAX_SAMPLE: u32 = 20;

/// Body of an estimate; without `sample`, 3 cards.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    /// How many cards to read, spread over the batch (1–20).
    #[schema(minimum = 1, maximum = 20)]
    pub sample: Option<u32>,
}

/// Reads a sample of the batch's cards, spread over it, through its
/// engine (results not kept) and answers what the whole batch will likely
/// take. The estimate is kept with the batch, to set beside the actual
/// figures after the run. Its own tokens are not counted in the batch's
/// usage.
#[utoipa::path(post, path = "/api/batches/{id}/estimate", tag = "prompt",
    params(("id" = String, Path, description = "Batch id")),
    request_body = EstimateRequest,
    responses(
        (status = 200, body = Estimate),
        (status = 404, body = ErrorBody, description = "No such batch"),
        (status = 409, body = ErrorBody, description = "Started already, no active field, or no card"),
        (status = 422, body = ErrorBody, description = "A sample outside 1–20"),
        (status = 502, body = ErrorBody, description = "The engine failed on every card of the sample"),
        (status = 503, body = ErrorBody, description = "The batch's engine is not available"),
    ))]
pub(crate) async fn estimate(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonObject(body): JsonObject<EstimateRequest>,
) -> Result<Json<Estimate>, ApiError> {
    let id = batch_id(id)?;
    let sample = body.sample.unwrap_or(DEFAULT_SAMPLE);
    if !(1..=MAX_SAMPLE).contains(&sample) {
        return Err(ApiError::invalid(
            "invalid_sample",
            format!("`sample` is a number of cards from 1 to {MAX_SAMPLE}"),
        ));
    }
    let batch = state.store.get_batch(&id).await?;
    if batch.state != cardex_core::BatchState::Open {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "batch_already_started",
            "an estimate is made before the start; the batch's usage says what it took",
        ));
    }
    super::need_active_fields(&batch, "estimating")?;
    let cards = state.store.list_cards(&id).await?;
    if cards.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_images",
            "upload the cards to estimate first",
        ));
    }
    let engine = super::batch_engine(&state, &batch)?;
    let prompt = CompiledPrompt::new(&batch.fields).map_err(ApiError::internal)?;
    let lang = batch.ocr_lang.as_deref();
    let reads = spread(cards.len(), sample as usize).into_iter().map(|i| {
        let (card, engine, prompt) = (&cards[i], engine.clone(), &prompt);
        let state = &state;
        let id = &id;
        async move {
            let images = super::card_images(state, id, card, engine.as_ref())
                .await
                .ok()?;
            let attempted = retry_attempts(&state.config.runner.retry, || {
                engine.extract_in(&images, prompt, lang)
            })
            .await;
            match attempted.result {
                Ok(_) => Some(Ok(attempted.usage)),
                Err(e) => Some(Err(e)),
            }
        }
    });
    let mut read: Vec<Usage> = Vec::new();
    let mut failure = None;
    for outcome in join_all(reads).await.into_iter().flatten() {
        match outcome {
            Ok(usage) => read.push(usage),
            Err(e) => failure = Some(e),
        }
    }
    if read.is_empty() {
        return Err(match failure {
            Some(e) => ApiError::new(StatusCode::BAD_GATEWAY, e.code(), e.to_string()),
            None => ApiError::invalid(
                "unreadable_images",
                "none of the sample's images could be read",
            ),
        });
    }
    let concurrency = state
        .runner
        .engines()
        .concurrency(&batch.engine)
        .unwrap_or(1)
        .max(1) as u64;
    let prices = state
        .runner
        .prices()
        .filter(|_| cardex_runner::is_priced(&batch.engine));
    let estimate = project(
        &read,
        cards.len() as u64,
        concurrency,
        prices,
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(ApiError::internal)?,
    );
    state
        .store
        .set_estimate(
            &id,
            &serde_json::to_value(&estimate).map_err(ApiError::internal)?,
        )
        .await?;
    Ok(Json(estimate))
}

/// `k` indices of `0..n`, spread evenly: the middle of each of `k` equal
/// stretches, so a batch scanned box by box is sampled from every part.
fn spread(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    (0..k).map(|i| (2 * i + 1) * n / (2 * k)).collect()
}

/// What `cards` cards will take, from the sample's usages: the sample's
/// mean per card times the cards; the time per card is the sample's mean
/// engine time over the requests the engine makes at once.
fn project(
    sample: &[Usage],
    cards: u64,
    concurrency: u64,
    prices: Option<&cardex_core::Prices>,
    made_at: String,
) -> Estimate {
    let n = sample.len().max(1) as f64;
    let mean = |f: fn(&Usage) -> u64| sample.iter().map(f).sum::<u64>() as f64 / n;
    let prompt = mean(|u| u.prompt_tokens);
    let completion = mean(|u| u.completion_tokens);
    let tokens = mean(|u| u.total_tokens);
    let seconds = mean(|u| u.ms) / 1000.0 / concurrency as f64;
    let round = |x: f64, places: i32| {
        let p = 10f64.powi(places);
        (x * p).round() / p
    };
    let all = cards as f64;
    Estimate {
        sample_cards: sample.len() as u64,
        tokens_per_card: round(tokens, 1),
        prompt_tokens_per_card: round(prompt, 1),
        completion_tokens_per_card: round(completion, 1),
        seconds_per_card: round(seconds, 4),
        concurrency,
        cards,
        total_tokens: (tokens * all).round() as u64,
        cost: prices.map(|p| p.cost_of(prompt * all, completion * all)),
        duration_seconds: round(seconds * all, 1),
        made_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_spread_over_the_batch() {
        assert_eq!(spread(1200, 3), vec![200, 600, 1000]);
        assert_eq!(spread(2, 3), vec![0, 1]);
        assert_eq!(spread(1, 3), vec![0]);
        assert_eq!(spread(10, 1), vec![5]);
    }

    #[test]
    fn projects_the_sample_onto_the_batch() {
        let card = |prompt: u64, completion: u64, ms: u64| Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            requests: 1,
            ms,
            ..Usage::default()
        };
        let sample = [card(1000, 100, 2000), card(1200, 140, 4000)];
        let prices = cardex_core::Prices {
            input: 0.5,
            output: 2.0,
        };
        let e = project(&sample, 1000, 4, Some(&prices), "now".into());
        assert_eq!(e.sample_cards, 2);
        assert_eq!(e.tokens_per_card, 1220.0);
        assert_eq!(e.total_tokens, 1_220_000);
        // 1.1 M prompt tokens at $0.50 and 0.12 M generated at $2.
        assert_eq!(e.cost, Some(0.79));
        // 3 s per card, 4 at once.
        assert_eq!(e.seconds_per_card, 0.75);
        assert_eq!(e.duration_seconds, 750.0);
        assert_eq!(project(&sample, 10, 1, None, "now".into()).cost, None);
    }
}
