import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, getToken, setToken } from '../api/client';
import { ErrorNote } from '../components/common';

/** The engines this server has, whether they answer, and the API token. */
export function SettingsPage() {
  const engines = useQuery({ queryKey: ['engines'], queryFn: api.engines });
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
                  {e.base_url && <code>{e.base_url}</code>} {e.detail}
                  {e.concurrency != null && <> · {e.concurrency} requests at once</>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
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
