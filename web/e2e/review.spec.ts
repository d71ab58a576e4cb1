import { expect, test, type Page } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const cardsDir = resolve(import.meta.dirname, '../../../shared/sample-cards');
const cards = readdirSync(cardsDir)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .slice(16, 24);

/** A finished batch of the sample cards, made through the API. */
async function finishedBatch(page: Page): Promise<string> {
  const api = page.request;
  const batch = await (await api.post('/api/batches', { data: { name: 'Review box' } })).json();
  for (const name of cards) {
    const res = await api.post(`/api/batches/${batch.id}/images`, {
      multipart: { files: { name, mimeType: 'image/jpeg', buffer: readFileSync(join(cardsDir, name)) } },
    });
    expect(res.ok()).toBe(true);
  }
  await api.put(`/api/batches/${batch.id}/fields`, {
    data: [
      { name: 'title', type: 'text', description: 'The title' },
      { name: 'year', type: 'integer', description: 'Year' },
    ],
  });
  expect((await api.post(`/api/batches/${batch.id}/start`)).ok()).toBe(true);
  await expect
    .poll(async () => (await (await api.get(`/api/batches/${batch.id}`)).json()).state, { timeout: 60_000 })
    .toMatch(/^completed/);
  return batch.id;
}

/** One file of a zip archive (the workbook), inflated. */
function unzipEntry(zip: Buffer, name: string): string {
  for (let at = 0; at + 30 < zip.length; ) {
    if (zip.readUInt32LE(at) !== 0x04034b50) break;
    const method = zip.readUInt16LE(at + 8);
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    const entry = zip.toString('utf8', at + 30, at + 30 + nameLength);
    const start = at + 30 + nameLength + extra;
    if (entry === name) {
      const data = zip.subarray(start, start + size);
      return (method === 8 ? inflateRawSync(data) : data).toString('utf8');
    }
    at = start + size;
  }
  throw new Error(`${name} is not in the archive`);
}

test('review five cards with the keyboard, correct one, reload, export; a second page sees it live', async ({ page, context }) => {
  const id = await finishedBatch(page);

  // From the run view's Review link.
  await page.goto(`/batches/${id}`);
  await expect(page.getByTestId('review-summary')).toContainText(`0 of ${cards.length} verified`);
  await page.getByRole('link', { name: 'Review', exact: true }).click();
  await expect(page.getByRole('heading', { name: /^Review / })).toBeVisible();
  const heading = page.locator('#review-card-title');
  await expect(page).toHaveURL(/review\?card=\d+$/);
  const firstId = new URL(page.url()).searchParams.get('card');
  // The heading says "Loading…" until the card's detail is in.
  const cardName = async () => {
    await expect(heading).not.toContainText('Loading');
    return (await heading.textContent())!.split(' (')[0].trim();
  };
  const firstName = await cardName();

  // A second page shows the same card.
  const other = await context.newPage();
  await other.goto(`/batches/${id}/review?card=${firstId}`);
  await expect(other.getByTestId('review-state')).toContainText('not reviewed');
  await page.bringToFront();

  // Keyboard only: Tab into the first field, correct it, Enter verifies
  // and moves on; four more with Enter.
  await page.keyboard.press('Tab');
  await expect(page.getByLabel(/title/)).toBeFocused();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('Corrected by a person');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status').filter({ hasText: `${firstName}: verified, 1 correction.` })).toBeVisible();
  for (let i = 1; i < 5; i++) {
    await expect(heading).not.toContainText(firstName);
    await expect(page.getByTestId('review-state')).toContainText('not reviewed');
    const name = await cardName();
    await page.keyboard.press('Enter');
    await expect(page.getByRole('status')).toContainText(`${name}: verified`);
  }
  await expect(page.getByTestId('review-counts')).toContainText(`5 of ${cards.length} verified`);

  // Zoom and move the image with the keys.
  await page.keyboard.press('+');
  await expect(page.getByText('125%')).toBeVisible();
  await page.keyboard.press('Shift+ArrowLeft');
  await expect(page.getByRole('img', { name: /^Card / })).toHaveAttribute('style', /translate\(80px, 0px\) scale\(1\.25\)/);
  await page.keyboard.press('0');
  await expect(page.getByText('100%')).toBeVisible();

  // The other page heard of the first review.
  await expect(other.getByTestId('review-state')).toContainText('verified');
  await expect(other.getByLabel(/title/)).toHaveValue('Corrected by a person');

  // u undoes the last review; reviewing it again puts it back.
  await page.keyboard.press('u');
  await expect(page.getByRole('status')).toContainText('is not reviewed again');
  await expect(page.getByTestId('review-counts')).toContainText(`4 of ${cards.length} verified`);
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('review-counts')).toContainText(`5 of ${cards.length} verified`);

  // Reload: the correction is kept, apart from what the machine read.
  await page.goto(`/batches/${id}/review?card=${firstId}`);
  await expect(page.getByLabel(/title/)).toHaveValue('Corrected by a person');
  await expect(page.getByText('corrected', { exact: false }).first()).toBeVisible();
  await expect(page.getByText(/Machine read: “|No machine reading/).first()).toBeVisible();

  // A value not of its field's type is refused under that field, kept in
  // it and focused; Esc drops it.
  const year = page.getByLabel(/year/);
  await year.fill('nineteen twelve');
  await page.keyboard.press('Enter');
  await expect(year).toHaveAttribute('aria-invalid', 'true');
  await expect(year).toBeFocused();
  await expect(year).toHaveValue('nineteen twelve');
  await expect(page.getByText(/^Not saved: .*year/)).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(year).not.toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByText(/^Not saved:/)).toHaveCount(0);

  // Exports hold the correction.
  await page.goto(`/batches/${id}`);
  const csvDownload = page.waitForEvent('download');
  await page.getByRole('button', { name: 'CSV' }).click();
  const csv = readFileSync(await (await csvDownload).path(), 'utf8');
  expect(csv).toContain('Corrected by a person');
  const xlsxDownload = page.waitForEvent('download');
  await page.getByRole('button', { name: 'XLSX' }).click();
  const xlsx = readFileSync(await (await xlsxDownload).path());
  expect(unzipEntry(xlsx, 'xl/sharedStrings.xml')).toContain('Corrected by a person');
});
