// Draws the tray and app icons into electron/assets/ with nothing but Node (zlib for PNG's deflate). Run it again
// after changing a shape: `node electron/scripts/make-icons.mjs`. The PNGs are committed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const OUT = new URL('../assets/', import.meta.url);

// ---- PNG encoding (RGBA, 8 bits per channel, no interlace) ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- drawing: layers of shapes in a unit square, 4x4 supersampled, composited "over" ----
function render(size, layers) {
  const out = Buffer.alloc(size * size * 4);
  const S = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let [r, g, b, a] = [0, 0, 0, 0];
      for (const { inside, color } of layers) {
        let hits = 0;
        for (let sy = 0; sy < S; sy++)
          for (let sx = 0; sx < S; sx++) if (inside((px + (sx + 0.5) / S) / size, (py + (sy + 0.5) / S) / size)) hits++;
        const la = (hits / (S * S)) * (color[3] ?? 1);
        if (la === 0) continue;
        const na = la + a * (1 - la);
        r = (color[0] * la + r * a * (1 - la)) / na;
        g = (color[1] * la + g * a * (1 - la)) / na;
        b = (color[2] * la + b * a * (1 - la)) / na;
        a = na;
      }
      out.set([Math.round(r), Math.round(g), Math.round(b), Math.round(a * 255)], (py * size + px) * 4);
    }
  }
  return out;
}

const dist = (x, y) => Math.hypot(x - 0.5, y - 0.5);
const disc = (radius) => (x, y) => dist(x, y) <= radius;
const ring = (outer, inner) => (x, y) => dist(x, y) <= outer && dist(x, y) >= inner;
const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const minus = (shape, hole) => (x, y) => shape(x, y) && !hole(x, y);
// "!" inside a disc: a bar and a dot.
const bang = (x, y) => rect(0.43, 0.2, 0.57, 0.6)(x, y) || (x - 0.5) ** 2 + (y - 0.74) ** 2 <= 0.08 ** 2;

const COLOURS = {
  off: [138, 143, 152],
  starting: [224, 148, 16],
  contributing: [46, 164, 79],
  attention: [215, 58, 73],
};
const WHITE = [255, 255, 255];
const BLACK = [0, 0, 0];

// One shape per state, so the states differ in monochrome (macOS templates) as well as in colour.
function trayLayers(state, template) {
  const ink = template ? BLACK : COLOURS[state];
  switch (state) {
    case 'off':
      return [{ inside: ring(0.44, 0.3), color: ink }];
    case 'starting':
      return [
        { inside: ring(0.44, 0.3), color: ink },
        { inside: disc(0.15), color: ink },
      ];
    case 'contributing':
      return [{ inside: disc(0.44), color: ink }];
    case 'attention':
      return template
        ? [{ inside: minus(disc(0.44), bang), color: ink }]
        : [
            { inside: disc(0.44), color: ink },
            { inside: bang, color: WHITE },
          ];
    default:
      throw new Error(state);
  }
}

// The app icon: a sun with rays (Ray) on a rounded blue square.
function appLayers() {
  const rounded = (x, y) => {
    const r = 0.18;
    const cx = Math.min(Math.max(x, 0.04 + r), 0.96 - r);
    const cy = Math.min(Math.max(y, 0.04 + r), 0.96 - r);
    return x >= 0.04 && x <= 0.96 && y >= 0.04 && y <= 0.96 && Math.hypot(x - cx, y - cy) <= r;
  };
  const rays = (x, y) => {
    const d = dist(x, y);
    if (d < 0.27 || d > 0.4) return false;
    const angle = Math.atan2(y - 0.5, x - 0.5);
    const step = (2 * Math.PI) / 12;
    const off = Math.abs((((angle % step) + step) % step) - step / 2);
    return off * d > (step / 2) * d - 0.022;
  };
  return [
    { inside: rounded, color: [31, 58, 147] },
    { inside: disc(0.19), color: WHITE },
    { inside: rays, color: WHITE },
  ];
}

mkdirSync(OUT, { recursive: true });
const written = [];
function save(name, size, layers) {
  writeFileSync(new URL(name, OUT), png(size, render(size, layers)));
  written.push(name);
}
for (const state of Object.keys(COLOURS)) {
  save(`tray-${state}.png`, 16, trayLayers(state, false));
  save(`tray-${state}@2x.png`, 32, trayLayers(state, false));
  save(`tray-${state}Template.png`, 16, trayLayers(state, true));
  save(`tray-${state}Template@2x.png`, 32, trayLayers(state, true));
}
// electron-builder makes .icns and .ico from a 512 px PNG (it needs at least 256).
save('icon.png', 512, appLayers());
console.warn(`wrote ${written.length} icons to ${OUT.pathname}`);
