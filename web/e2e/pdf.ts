// A PDF with one page per JPEG, each JPEG embedded unchanged (DCTDecode),
// as a document scanner writes a box of cards: for the tests that upload
// a PDF. The Rust tests' twin is crates/cardex-testkit/src/pdf.rs.

/** Width, height and colour components from a JPEG's frame header (SOFn). */
function jpegFrame(jpeg: Buffer): { width: number; height: number; components: number } {
  let at = 2;
  while (at + 9 < jpeg.length) {
    if (jpeg[at] !== 0xff) throw new Error('not a JPEG marker');
    const marker = jpeg[at + 1];
    const length = jpeg.readUInt16BE(at + 2);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isFrame) {
      return { height: jpeg.readUInt16BE(at + 5), width: jpeg.readUInt16BE(at + 7), components: jpeg[at + 9] };
    }
    at += 2 + length;
  }
  throw new Error('no frame header in the JPEG');
}

export function jpegPdf(jpegs: Buffer[]): Buffer {
  const objects: Buffer[] = [];
  const text = (s: string) => Buffer.from(s, 'latin1');
  const stream = (dict: string, data: Buffer) =>
    Buffer.concat([text(`<< ${dict} /Length ${data.length} >>\nstream\n`), data, text('\nendstream')]);
  const pages = jpegs.map((_, i) => 3 + 3 * i);
  objects.push(text('<< /Type /Catalog /Pages 2 0 R >>'));
  objects.push(text(`<< /Type /Pages /Kids [${pages.map((p) => `${p} 0 R`).join(' ')}] /Count ${pages.length} >>`));
  jpegs.forEach((jpeg, i) => {
    const { width: w, height: h, components } = jpegFrame(jpeg);
    const page = pages[i];
    const space = components === 1 ? '/DeviceGray' : '/DeviceRGB';
    objects.push(
      text(
        `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${w} ${h}] /Resources << /XObject << /Im0 ${page + 1} 0 R >> >> /Contents ${page + 2} 0 R >>`,
      ),
    );
    objects.push(
      stream(`/Type /XObject /Subtype /Image /Width ${w} /Height ${h} /ColorSpace ${space} /BitsPerComponent 8 /Filter /DCTDecode`, jpeg),
    );
    objects.push(stream('', text(`q ${w} 0 0 ${h} 0 0 cm /Im0 Do Q`)));
  });
  const parts: Buffer[] = [text('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n')];
  let size = parts[0].length;
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(size);
    const chunk = Buffer.concat([text(`${i + 1} 0 obj\n`), o, text('\nendobj\n')]);
    parts.push(chunk);
    size += chunk.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`, ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)];
  parts.push(text(xref.join('')));
  parts.push(text(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${size}\n%%EOF\n`));
  return Buffer.concat(parts);
}
