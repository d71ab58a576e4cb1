import { useEffect, useState, useSyncExternalStore } from 'react';
import { needsToken, onTokenChange, setToken } from './api/client';
import { BatchPage } from './pages/BatchPage';
import { BatchesPage } from './pages/BatchesPage';
import { ReviewPage } from './pages/ReviewPage';
import { SettingsPage } from './pages/SettingsPage';
import { TemplatesPage } from './pages/TemplatesPage';
import { Link } from './components/common';
import { match, usePath } from './router';

export function App() {
  const route = match(usePath());
  const locked = useSyncExternalStore(onTokenChange, needsToken);
  useEffect(() => {
    document.title = 'cardex';
  }, [route.page]);
  return (
    <div className="app">
      <header className="top">
        <Link to="/" className="brand">
          cardex
        </Link>
        <nav aria-label="Main">
          <Link to="/" className={route.page === 'batches' || route.page === 'batch' || route.page === 'review' ? 'active' : ''}>
            Batches
          </Link>
          <Link to="/templates" className={route.page === 'templates' ? 'active' : ''}>
            Templates
          </Link>
          <Link to="/settings" className={route.page === 'settings' ? 'active' : ''}>
            Settings
          </Link>
        </nav>
      </header>
      <main>
        {locked ? (
          <TokenPrompt />
        ) : route.page === 'batches' ? (
          <BatchesPage />
        ) : route.page === 'batch' ? (
          <BatchPage id={route.id} key={route.id} />
        ) : route.page === 'review' ? (
          <ReviewPage id={route.id} key={route.id} />
        ) : route.page === 'templates' ? (
          <TemplatesPage />
        ) : route.page === 'settings' ? (
          <SettingsPage />
        ) : (
          <section className="panel">
            <h1>Not found</h1>
            <p>
              There is no page here. <Link to="/">Back to the batches</Link>
            </p>
          </section>
        )}
      </main>
    </div>
  );
}

/** Asked for when the server answers 401: it was started with an API token. */
function TokenPrompt() {
  const [value, setValue] = useState('');
  return (
    <section className="panel narrow">
      <h1>This server needs its API token</h1>
      <p>
        cardex was started with <code>--api-token</code>. Enter the token to continue; it is kept in this
        browser only.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) {
            setToken(value.trim());
            location.reload();
          }
        }}
      >
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoFocus value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" className="primary">
          Continue
        </button>
      </form>
    </section>
  );
}
