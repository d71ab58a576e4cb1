// What a batch costs (DESIGN §14): tokens, dollars and time, the estimate
// before Start set beside the actual figures after, and the budget.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type Batch, type BatchUsage, type Estimate } from '../api/client';
import { ErrorNote } from './common';

/** `1.3 M`, `12.4 k`, `850`: tokens at a glance. */
export function formatTokens(n: number): string {
  if (n >= 1e6) return `${trim(n / 1e6)} M`;
  if (n >= 1e4) return `${trim(n / 1e3)} k`;
  return Math.round(n).toLocaleString('en-US');
}

function trim(x: number): string {
  return x >= 100 ? Math.round(x).toString() : x.toFixed(1).replace(/\.0$/, '');
}

/** `$0.41`, and cents' fractions for tiny sums: `$0.0032`. */
export function formatCost(dollars: number): string {
  if (dollars === 0) return '$0';
  if (dollars < 0.01) return `$${dollars.toPrecision(2)}`;
  return `$${dollars.toFixed(2)}`;
}

/** `45 s`, `18 min`, `2 h 5 min`. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** "≈ 1.3 M tokens · ≈ $0.41 · ≈ 18 min for 1,214 cards". */
export function estimateLine(e: Estimate): string {
  const parts: string[] = [];
  if (e.total_tokens > 0) parts.push(`≈ ${formatTokens(e.total_tokens)} tokens`);
  if (e.cost != null) parts.push(`≈ ${formatCost(e.cost)}`);
  parts.push(`≈ ${formatDuration(e.duration_seconds)}`);
  const cards = `${e.cards.toLocaleString('en-US')} card${e.cards === 1 ? '' : 's'}`;
  return `${parts.join(' · ')} for ${cards}`;
}

/** "from 3 sample cards, 2 requests at once". */
export function estimateBasis(e: Estimate): string {
  const sample = `from ${e.sample_cards} sample card${e.sample_cards === 1 ? '' : 's'}`;
  return `${sample}, ${e.concurrency} request${e.concurrency === 1 ? '' : 's'} at once`;
}

/** The estimate with a button to make it, for the check-and-start step. */
export function EstimateBox({ batch, disabled, prepare }: { batch: Batch; disabled: boolean; prepare: () => Promise<void> }) {
  const client = useQueryClient();
  const estimate = useMutation({
    mutationFn: async () => {
      await prepare();
      return api.estimate(batch.id);
    },
    onSuccess: () => client.invalidateQueries({ queryKey: ['batch', batch.id] }),
  });
  const shown = estimate.data ?? batch.estimate ?? null;
  return (
    <div className="estimate">
      <div className="row">
        <h3>What the batch will take</h3>
        <button type="button" disabled={disabled || estimate.isPending} onClick={() => estimate.mutate()}>
          {estimate.isPending ? 'Reading sample cards…' : shown ? 'Estimate again' : 'Estimate'}
        </button>
      </div>
      <div aria-live="polite">
        {shown ? (
          <p>
            <strong data-testid="estimate">{estimateLine(shown)}</strong>{' '}
            <span className="muted small">({estimateBasis(shown)})</span>
          </p>
        ) : (
          <p className="muted small">
            Reads 3 cards spread over the batch (their results are not kept) to tell how many tokens, dollars and
            minutes the whole batch will take.
          </p>
        )}
      </div>
      <ErrorNote error={estimate.error} />
    </div>
  );
}

/** The budget's two bounds, saved together; empty is no bound. */
export function BudgetForm({ batch, onSaved }: { batch: Batch; onSaved?: (b: Batch) => void }) {
  const client = useQueryClient();
  const [tokens, setTokens] = useState(batch.max_tokens?.toString() ?? '');
  const [cost, setCost] = useState(batch.max_cost?.toString() ?? '');
  const [saved, setSaved] = useState(false);
  const save = useMutation({
    mutationFn: () => {
      const maxTokens = tokens.trim() ? Number(tokens) : null;
      const maxCost = cost.trim() ? Number(cost) : null;
      if ((maxTokens !== null && !Number.isFinite(maxTokens)) || (maxCost !== null && !Number.isFinite(maxCost)))
        throw new Error('Type a number of tokens and of dollars (such as 2.50), or leave a box empty for no limit.');
      return api.setBudget(batch.id, { max_tokens: maxTokens, max_cost: maxCost });
    },
    onSuccess: (b) => {
      client.setQueryData(['batch', batch.id], b);
      setSaved(true);
      onSaved?.(b);
    },
  });
  const changed = () => setSaved(false);
  return (
    <form
      className="row budget"
      aria-label="Budget"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="budget-tokens">Stop after tokens</label>
        <input
          id="budget-tokens"
          inputMode="numeric"
          placeholder="no limit"
          value={tokens}
          onChange={(e) => {
            setTokens(e.target.value.replace(/[^0-9]/g, ''));
            changed();
          }}
        />
      </div>
      <div className="field">
        <label htmlFor="budget-cost">Stop after US dollars</label>
        <input
          id="budget-cost"
          inputMode="decimal"
          placeholder="no limit"
          value={cost}
          onChange={(e) => {
            setCost(e.target.value.replace(/[^0-9.]/g, ''));
            changed();
          }}
        />
      </div>
      <button type="submit" disabled={save.isPending}>
        Save budget
      </button>
      <span role="status" className="ok small">
        {saved ? 'Budget saved.' : ''}
      </span>
      <ErrorNote error={save.error} />
    </form>
  );
}

/** The batch's usage so far, beside its estimate when one was made. */
export function UsagePanel({ batch, usage }: { batch: Batch; usage: BatchUsage }) {
  const model = batch.engine === 'vlm';
  const e = batch.estimate;
  const cards = batch.counts.done + batch.counts.failed;
  const live = batch.state === 'running' || batch.state === 'paused' || batch.state === 'open';
  return (
    <section className="panel" aria-labelledby="usage-title">
      <h2 id="usage-title">What the batch cost</h2>
      <dl className="stats">
        {model && (
          <div>
            <dt>Tokens</dt>
            <dd data-testid="usage-tokens">
              {formatTokens(usage.total_tokens)}
              <div className="muted small">
                {formatTokens(usage.prompt_tokens)} in · {formatTokens(usage.completion_tokens)} out
              </div>
            </dd>
          </div>
        )}
        <div>
          <dt>Cost</dt>
          <dd data-testid="usage-cost">
            {usage.cost != null ? formatCost(usage.cost) : <span className="muted small">{model ? 'no prices set' : 'none (runs here)'}</span>}
          </dd>
        </div>
        <div>
          <dt>Requests</dt>
          <dd>{usage.requests.toLocaleString('en-US')}</dd>
        </div>
        {model && cards > 0 && (
          <div>
            <dt>Per card</dt>
            <dd>{formatTokens(usage.total_tokens / cards)} tokens</dd>
          </div>
        )}
      </dl>
      {e && (
        <p className="small" data-testid="estimate-vs-actual">
          Estimated before the start: {estimateLine(e)} <span className="muted">({estimateBasis(e)})</span>.
          {cards > 0 && model && e.tokens_per_card > 0 && (
            <>
              {' '}
              {live ? 'Actual so far' : 'Actual'}: {formatTokens(usage.total_tokens / cards)} tokens per card against{' '}
              {formatTokens(e.tokens_per_card)} estimated ({percentOff(usage.total_tokens / cards, e.tokens_per_card)}).
            </>
          )}
        </p>
      )}
      {live && batch.state !== 'open' && (
        <details open={batch.pause_code === 'budget_reached'}>
          <summary>Budget{budgetWords(batch)}</summary>
          <BudgetForm batch={batch} />
          {batch.pause_code === 'budget_reached' && (
            <p className="muted small">Raise or clear the budget, save it, then resume the batch.</p>
          )}
        </details>
      )}
    </section>
  );
}

/** ": 50,000 tokens · $1.00", or nothing without a budget. */
function budgetWords(batch: Batch): string {
  const parts: string[] = [];
  if (batch.max_tokens != null) parts.push(`${batch.max_tokens.toLocaleString('en-US')} tokens`);
  if (batch.max_cost != null) parts.push(formatCost(batch.max_cost));
  return parts.length ? `: ${parts.join(' · ')}` : ': none';
}

/** "8% more", "3% less", "as estimated". */
export function percentOff(actual: number, estimated: number): string {
  const off = Math.round(((actual - estimated) / estimated) * 100);
  if (off === 0) return 'as estimated';
  return off > 0 ? `${off}% more` : `${-off}% less`;
}
