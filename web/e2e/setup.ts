// Starts vlm-sim and `cardex serve` (debug builds from target/, built by
// `make test`) on fixed loopback ports with a temporary data dir; the
// returned function stops both and removes the data.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const bin = (name: string) => join(root, 'target', process.env.CARDEX_PROFILE ?? 'debug', name);

async function waitFor(url: string, child: ChildProcess) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

export default async function setup() {
  const data = mkdtempSync(join(tmpdir(), 'cardex-e2e-'));
  // Slow enough to reload mid-run; about one request in three fails with a 500,
  // and cards get one attempt, so some fail and retry-failed has work.
  const sim = spawn(
    bin('vlm-sim'),
    ['--bind', '127.0.0.1:47801', '--slots', '2', '--latency-ms', '250', '--error-500-rate', '0.35'],
    { stdio: 'inherit' },
  );
  const server = spawn(
    bin('cardex'),
    [
      'serve',
      '--data-dir', data,
      '--bind', '127.0.0.1:47802',
      '--web-dir', join(root, 'web/dist'),
      '--vlm-url', 'http://127.0.0.1:47801/v1',
      '--vlm-model', 'sim-vlm',
      '--max-attempts', '1',
    ],
    { stdio: 'inherit', env: { ...process.env, RUST_LOG: 'warn' } },
  );
  await waitFor('http://127.0.0.1:47801/v1/models', sim);
  await waitFor('http://127.0.0.1:47802/api/health', server);
  return async () => {
    server.kill('SIGTERM');
    sim.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(data, { recursive: true, force: true });
  };
}
