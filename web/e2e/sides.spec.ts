import { expect, test } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { jpegPdf } from './pdf';

const cardsDir = resolve(import.meta.dirname, '../../../shared/sample-cards');
const jpegs = readdirSync(cardsDir)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .slice(16, 20)
  .map((f) => readFileSync(join(cardsDir, f)));

test('a duplex PDF becomes two-sided cards, page by page, and both sides are shown', async ({ page }) => {
  await page.goto('/');
  await page.getByLabel('Batch name').fill('Duplex box 12');
  await page.getByLabel('Sides').selectOption('order');
  await page.getByRole('button', { name: 'Create batch' }).click();
  await expect(page.getByRole('heading', { name: 'Duplex box 12' })).toBeVisible();
  await expect(page.getByText('two-sided, paired by upload order')).toBeVisible();

  // A scanner's PDF of two cards, front and back of each: four pages.
  await page.getByLabel('Card images').setInputFiles({ name: 'box-12.pdf', mimeType: 'application/pdf', buffer: jpegPdf(jpegs) });
  const uploads = page.getByRole('list', { name: 'Uploads' });
  await expect(uploads.getByText('4 pages added')).toBeVisible();
  const list = page.getByRole('list', { name: 'Cards in the batch' });
  await expect(list.getByText('box-12.pdf p. 1 + box-12.pdf p. 2')).toBeVisible();
  await expect(list.getByText('box-12.pdf p. 3 + box-12.pdf p. 4')).toBeVisible();
  await expect(page.getByText('2 cards in this batch.')).toBeVisible();

  // One more image: a front without its back holds the start back.
  await page.getByLabel('Card images').setInputFiles({ name: 'loose.jpg', mimeType: 'image/jpeg', buffer: readFileSync(join(cardsDir, 'card-01-0000.jpg')) });
  await expect(list.getByText('front only: its back is missing')).toBeVisible();
  await expect(page.getByText(/3 cards in this batch, 1 with one side only/)).toBeVisible();

  await page.getByRole('button', { name: '+ Add field' }).click();
  await page.getByLabel('Name').fill('title');
  await page.getByRole('button', { name: 'Save fields' }).click();
  // The prompt tells the model which image is which.
  await expect(page.locator('.prompt pre').nth(1)).toContainText('the first image is its front, the second its back');

  // The card to test shows both sides, as the model receives them.
  await expect(page.getByRole('img', { name: /, front$/ })).toBeVisible();
  const back = page.getByRole('img', { name: /, back$/ });
  await expect(back).toBeVisible();
  await expect.poll(() => back.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);

  const start = page.getByRole('button', { name: /Start processing 3 cards/ });
  await expect(start).toBeDisabled();
  await expect(page.getByText('1 card has one side only.')).toBeVisible();
  await page.getByLabel(/Read the 1 card with one side only/).check();
  await expect(start).toBeEnabled();
  await start.click();
  await expect(page.getByText('Progress', { exact: true })).toBeVisible();

  // Once it ends (read or failed, both can be reviewed), the review page
  // shows a two-sided card's front, and its back with the key f.
  const id = page.url().split('/').pop()!;
  await expect
    .poll(async () => (await (await page.request.get(`/api/batches/${id}`)).json()).state, { timeout: 60_000 })
    .toMatch(/^completed/);
  const listed: { id: number; images: { original_name: string }[] }[] = await (
    await page.request.get(`/api/batches/${id}/images`)
  ).json();
  const pair = listed.find((c) => c.images.length === 2)!;
  await page.goto(`/batches/${id}/review?card=${pair.id}`);
  await expect(page.locator('#review-card-title')).toContainText(
    `${pair.images[0].original_name} + ${pair.images[1].original_name}`,
  );
  const sides = page.getByRole('group', { name: 'Side of the card' });
  await expect(sides.getByRole('button', { name: 'Front' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('img', { name: /, front$/ })).toBeVisible();
  const backAsked = page.waitForRequest((r) => r.url().endsWith(`/images/${pair.id}/preview?side=back`));
  await page.keyboard.press('f');
  await backAsked;
  await expect(sides.getByRole('button', { name: 'Back' })).toHaveAttribute('aria-pressed', 'true');
  const shown = page.getByRole('img', { name: /, back$/ });
  await expect(shown).toBeVisible();
  await expect.poll(() => shown.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
  await sides.getByRole('button', { name: 'Front' }).click();
  await expect(page.getByRole('img', { name: /, front$/ })).toBeVisible();
});
