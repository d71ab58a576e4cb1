// Starts vlm-sim and `cardex serve` (debug builds from target/, built by
// `make test`) with a temporary data dir. Both bind port 0 and print their
// URL, so a leftover process or another program on a fixed port cannot
// break the run. The cardex URL reaches the tests through CARDEX_E2E_URL
// (workers inherit the environment); the returned function stops both and
// removes the data.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '../..');
const bin = (name: string) => join(root, 'target', process.env.CARDEX_PROFILE ?? 'debug', name);

/** Starts `name` and resolves with the first http:// URL it prints on stdout. */
function start(name: string, args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(bin(name), args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no URL within 30 s`)), 30_000);
    let found = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      process.stdout.write(`[${name}] ${line}\n`);
      const url = /http:\/\/[^\s/]+/.exec(line)?.[0];
      if (url && !found) {
        found = true;
        clearTimeout(timer);
        resolveUrl({ child, url });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${name} exited with ${code} before it was listening`));
    });
  });
}

export default async function setup() {
  const data = mkdtempSync(join(tmpdir(), 'cardex-e2e-'));
  // Slow enough to reload mid-run; half the requests fail with a 500,
  // and cards get one attempt, so some fail and retry-failed has work.
  const sim = await start('vlm-sim', ['--bind', '127.0.0.1:0', '--slots', '2', '--latency-ms', '250', '--error-500-rate', '0.5']);
  const server = await start('cardex', [
    'serve',
    '--data-dir', data,
    '--bind', '127.0.0.1:0',
    '--web-dir', join(root, 'web/dist'),
    '--vlm-url', `${sim.url}/v1`,
    '--vlm-model', 'sim-vlm',
    '--max-attempts', '1',
  ]).catch((e) => {
    sim.child.kill('SIGTERM');
    throw e;
  });
  process.env.CARDEX_E2E_URL = server.url;
  return async () => {
    server.child.kill('SIGTERM');
    sim.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(data, { recursive: true, force: true });
  };
}
