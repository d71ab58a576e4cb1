import { defineConfig } from '@playwright/test';

// End-to-end tests: Debian's Chromium (browser downloads are impossible
// here) against the real cardex binary and the model-server simulator,
// both started by e2e/setup.ts. A failing test leaves a screenshot in
// web/test-results/.
export default defineConfig({
  testDir: 'e2e',
  timeout: 120_000,
  // Generous for a loaded 2-core CI machine running debug builds.
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  globalSetup: './e2e/setup.ts',
  use: {
    // Set by e2e/setup.ts once the server is listening on its free port.
    baseURL: process.env.CARDEX_E2E_URL,
    viewport: { width: 1280, height: 800 },
    screenshot: 'only-on-failure',
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
