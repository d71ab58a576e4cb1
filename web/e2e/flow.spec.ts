import { expect, test } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const cardsDir = resolve(import.meta.dirname, '../../../shared/sample-cards');
const cards = readdirSync(cardsDir)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .slice(0, 16)
  .map((f) => join(cardsDir, f));

test('from an empty list to an exported CSV, with a reload mid-run and retry-failed', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByText('No batches yet.')).toBeVisible();

  // New batch.
  await page.getByLabel('Batch name').fill('Library cards box 1');
  await page.getByRole('button', { name: 'Create batch' }).click();
  await expect(page.getByRole('heading', { name: 'Library cards box 1' })).toBeVisible();
  expect(page.url()).toMatch(/\/batches\/[a-z0-9]{8}$/);

  // Upload through the file picker, then a bad file, then remove a card.
  await page.getByLabel('Card images').setInputFiles(cards);
  await expect(page.getByText(`${cards.length} cards in this batch`)).toBeVisible();
  await page.getByLabel('Card images').setInputFiles({ name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('not an image') });
  await expect(page.getByRole('list', { name: 'Uploads' }).getByText(/not an image|image/i).first()).toBeVisible();
  await page.getByRole('button', { name: `Remove ${cards[0].split('/').pop()}` }).click();
  const kept = cards.length - 1;
  await expect(page.getByText(`${kept} cards in this batch`)).toBeVisible();

  // Start is not possible without an active field.
  const start = page.getByRole('button', { name: /Start processing/ });
  await expect(start).toBeDisabled();

  // Fields: two, one renamed badly first to see the inline check.
  await page.getByRole('button', { name: '+ Add field' }).click();
  await page.getByLabel('Name').fill('the title');
  await expect(page.getByText(/no spaces/)).toBeVisible();
  await page.getByLabel('Name').fill('title');
  await page.getByLabel(/What it is/).fill('the title of the work');
  await page.getByRole('button', { name: '+ Add field' }).click();
  await page.getByLabel('Name').nth(1).fill('year');
  await page.getByLabel('Type').nth(1).selectOption('integer');
  await page.getByLabel('Save as template').fill('Catalog card');
  await page.getByRole('button', { name: 'Save template' }).click();
  await expect(page.getByText('Saved as template “Catalog card”.')).toBeVisible();

  // Verification: the prompt and schema, and a one-card test.
  await expect(page.locator('.prompt pre').nth(2)).toContainText('"title"');
  // The simulator fails half the requests and cards get one
  // attempt: a failed test shows the server's message; try again. Each
  // click waits for its own answer, so no click can land after a success
  // and clear it.
  const testResult = page.getByTestId('test-result');
  for (let attempt = 0; attempt < 16; attempt++) {
    const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/test'));
    await page.getByRole('button', { name: 'Test one card' }).click();
    if ((await answer).ok()) break;
    await expect(page.getByRole('alert').filter({ hasText: /model server/ })).toBeVisible();
  }
  await expect(testResult).toContainText('"title"');
  // Beside it, the card as the model receives it, decoded by the browser.
  const preview = page.getByRole('img', { name: /Card / });
  await expect(preview).toBeVisible();
  await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);

  // What the batch will take, from sample cards read now (the simulator
  // fails half the requests: ask again until a sample card is read).
  for (let attempt = 0; attempt < 16; attempt++) {
    const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/estimate'));
    await page.getByRole('button', { name: /^Estimate/ }).click();
    if ((await answer).ok()) break;
  }
  await expect(page.getByTestId('estimate')).toHaveText(/^≈ [\d.,]+( k| M)? tokens · ≈ \d+ (s|min) for \d+ cards$/);

  // Start, and reload while it runs.
  await expect(start).toBeEnabled();
  await start.click();
  await expect(page.getByText('Progress', { exact: true })).toBeVisible();
  await expect(page.getByTestId('result-row').first()).toBeVisible({ timeout: 30_000 });
  await page.reload();
  await expect(page.getByText('live', { exact: true })).toBeVisible();

  // It ends; each card has exactly one row.
  await expect(page.getByTestId('percent')).toHaveText('100%', { timeout: 60_000 });
  await expect(page.getByTestId('result-row')).toHaveCount(kept);

  // Some cards failed (the simulator answers 500 to half the requests and
  // cards get one attempt; none failing has odds of 2^-15): retry them until
  // none are left.
  const counts = page.getByTestId('counts');
  const batchUrl = `/api/batches/${page.url().split('/').pop()}`;
  const ended = (b: { state: string }) => b.state === 'completed' || b.state === 'completed_with_errors';
  let retries = 0;
  for (let round = 0; round < 20; round++) {
    // Wait for the run to end (by the API), then for the page to show its counts.
    await expect.poll(async () => ended(await (await page.request.get(batchUrl)).json()), { timeout: 60_000 }).toBe(true);
    const batch = await (await page.request.get(batchUrl)).json();
    const { done, failed, total } = batch.counts;
    await expect(counts).toHaveText(`${done} done · ${failed} failed · ${total} total`);
    if (failed === 0) break;
    await expect(page.getByRole('list', { name: 'Failed cards' }).locator('li').first()).toContainText('500');
    await page.getByRole('button', { name: 'Retry failed cards' }).click();
    retries++;
    // The retry is over once the batch has ended again, with newer events.
    await expect
      .poll(async () => {
        const b = await (await page.request.get(batchUrl)).json();
        return ended(b) && b.last_seq > batch.last_seq;
      }, { timeout: 60_000 })
      .toBe(true);
  }
  expect(retries, 'the simulator injected failures, so there was something to retry').toBeGreaterThan(0);
  await expect(page.getByTestId('counts')).toContainText(`${kept} done · 0 failed · ${kept} total`);
  await expect(page.getByTestId('result-row')).toHaveCount(kept);

  // What it cost, beside the estimate.
  await expect(page.getByTestId('usage-tokens')).toContainText(/\d/);
  await expect(page.getByTestId('usage-cost')).toHaveText('no prices set');
  await expect(page.getByTestId('estimate-vs-actual')).toContainText('tokens per card against');

  // Export.
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'CSV' }).click();
  const file = await (await download).path();
  const csv = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  expect(csv[0]).toBe('card_id,original_name,state,title,year,error,source_name,page');
  expect(csv).toHaveLength(kept + 1);
  expect(csv.slice(1).every((l) => l.includes(',done,'))).toBe(true);

  // The list shows the finished batch.
  await page.getByRole('link', { name: 'Batches' }).click();
  await expect(page.getByRole('row', { name: /Library cards box 1/ })).toContainText('completed');
  await expect(page.getByRole('row', { name: /Library cards box 1/ })).toContainText(/tokens/);
});

test('templates and settings pages', async ({ page }) => {
  await page.goto('/templates');
  await expect(page.getByText('Catalog card')).toBeVisible();
  await page.getByRole('button', { name: 'Edit Catalog card' }).click();
  await page.getByLabel('Template name').fill('Catalog card v2');
  await page.getByRole('button', { name: 'Save template' }).click();
  await expect(page.getByText('Catalog card v2')).toBeVisible();

  await page.goto('/settings');
  const vlm = page.getByRole('row', { name: /vlm/ });
  await expect(vlm).toContainText('yes');
  await expect(page.getByRole('row', { name: /ocr/ })).toBeVisible();
  // The model server behind the VLM engine, with its own figures.
  const servers = page.getByRole('table', { name: 'Model servers' });
  await expect(servers.getByRole('row')).toHaveCount(2);
  await expect(servers.getByRole('row').nth(1)).toContainText('/v1');

  // A deep link that does not exist gets the app's own page.
  await page.goto('/no/such/page');
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
});
