import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, getToken, setToken, type EngineInfo } from '../api/client';
import { ErrorNote } from '../components/common';

/** The engines this server has, whether they answer, and the API token. */
export function SettingsPage() {
  // Refreshed while open: the model servers' figures move with the work.
  const engines = useQuery({ queryKey: ['engines'], queryFn: api.engines, refetchInterval: 3000 });
  const health = useQuery({ queryKey: ['health'], queryFn: api.health });
  const [token, setTokenValue] = useState(getToken() ?? '');
  return (
    <>
      <section className="panel">
        <h1>Engines</h1>
        <p className="muted">
          New batches use the default engine. Point cardex at a model server with <code>--vlm-url</code> and{' '}
          <code>--vlm-model</code> (Ollama, vLLM, llama.cpp, LM Studio or a hosted API); without one, the embedded OCR
          engine reads the cards.
        </p>
        <ErrorNote error={engines.error} />
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Engine</th>
              <th scope="col">Default</th>
              <th scope="col">Reachable</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {engines.data?.map((e) => (
              <tr key={e.name}>
                <td>
                  <strong>{e.name}</strong> {e.model && <span className="muted">({e.model})</span>}
                </td>
                <td>{e.default ? 'yes' : ''}</td>
                <td className={e.reachable ? 'ok' : 'error'}>{e.reachable ? 'yes' : 'no'}</td>
                <td className="small">
                  {e.base_url && e.servers.length <= 1 && <code>{e.base_url}</code>} {e.detail}
                  {e.concurrency != null && <> · {e.concurrency} requests at once</>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {engines.data
          ?.filter((e) => e.servers.length > 0)
          .map((e) => <ServersTable key={e.name} engine={e} />)}
        {health.data && <p className="muted small">cardex {health.data.version}</p>}
      </section>
      <section className="panel narrow">
        <h2>API token</h2>
        <p className="muted">Only needed when the server was started with --api-token. Kept in this browser.</p>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            setToken(token.trim() || null);
          }}
        >
          <div className="field">
            <label htmlFor="settings-token">Token</label>
            <input id="settings-token" type="password" value={token} onChange={(e) => setTokenValue(e.target.value)} />
          </div>
          <button type="submit">Save token</button>
        </form>
      </section>
    </>
  );
}

/** Seconds as people say them: "12 s", "3 min". */
function ago(seconds: number): string {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

/**
 * The model servers behind an engine (DESIGN §15): each with its own limit
 * and health. A server that stops answering is set aside, its cards go to
 * the others, and it is probed until it answers again.
 */
function ServersTable({ engine }: { engine: EngineInfo }) {
  const count = engine.servers.length;
  const aside = engine.servers.filter((s) => s.health === 'set_aside').length;
  return (
    <>
      <h2 id={`servers-${engine.name}`} className="spaced">
        Model servers
      </h2>
      <p className="muted">
        {count === 1
          ? 'One server. Give --vlm-url more than once to spread the cards over replicas of the same model.'
          : `${count} servers of ${engine.model ?? 'the model'}; each card goes to the one with the most room.`}
        {aside > 0 && ` ${aside} set aside: its cards go to the others, and it is tried again until it answers.`}
      </p>
      <table className="list" aria-labelledby={`servers-${engine.name}`}>
        <thead>
          <tr>
            <th scope="col">Server</th>
            <th scope="col">State</th>
            <th scope="col">Requests at once</th>
            <th scope="col">In flight</th>
            <th scope="col">Cards read</th>
            <th scope="col">Errors</th>
          </tr>
        </thead>
        <tbody>
          {engine.servers.map((s) => (
            <tr key={s.url}>
              <td>
                <code>{s.url}</code>
              </td>
              <td className={s.health === 'up' ? 'ok' : 'error'}>
                {s.health === 'up' ? (
                  s.reachable ? (
                    'in use'
                  ) : (
                    'in use, but did not answer just now'
                  )
                ) : (
                  <>
                    set aside{s.set_aside_seconds != null && ` ${ago(s.set_aside_seconds)} ago`}
                    {s.reason && <span className="small muted"> · {s.reason}</span>}
                  </>
                )}
              </td>
              <td>{s.limit}</td>
              <td>{s.in_flight}</td>
              <td>{s.completions.toLocaleString()}</td>
              <td>{s.errors.toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
