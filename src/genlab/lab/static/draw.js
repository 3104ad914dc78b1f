// Pictures on canvas: heatmaps, point clouds and curves. No library, no network.

// A perceptually ordered colour scale (viridis' end points and three between), 256 entries.
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const f = (i / 255) * (STOPS.length - 1);
    const k = Math.min(STOPS.length - 2, Math.floor(f));
    const w = f - k;
    for (let c = 0; c < 3; c++) lut[3 * i + c] = STOPS[k][c] * (1 - w) + STOPS[k + 1][c] * w;
  }
  return lut;
})();

// Bytes 0..255 (res x res, rows from the top) from the base64 the server sends.
export function decodeBytes(b64) {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

const offscreen = document.createElement("canvas");

// Draw a res x res grid of bytes over the whole canvas; returns the milliseconds it took.
export function drawHeatmap(ctx, bytes, res) {
  const start = performance.now();
  offscreen.width = res;
  offscreen.height = res;
  const octx = offscreen.getContext("2d");
  const image = octx.createImageData(res, res);
  const px = image.data;
  for (let i = 0; i < res * res; i++) {
    const v = 3 * bytes[i];
    px[4 * i] = LUT[v];
    px[4 * i + 1] = LUT[v + 1];
    px[4 * i + 2] = LUT[v + 2];
    px[4 * i + 3] = 255;
  }
  octx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(offscreen, 0, 0, ctx.canvas.width, ctx.canvas.height);
  return performance.now() - start;
}

// Data coordinates <-> canvas pixels for a view [x0, x1, y0, y1].
export function toPixel(canvas, bounds, x, y) {
  const [x0, x1, y0, y1] = bounds;
  return [((x - x0) / (x1 - x0)) * canvas.width, ((y1 - y) / (y1 - y0)) * canvas.height];
}

export function toData(canvas, bounds, px, py) {
  const [x0, x1, y0, y1] = bounds;
  return [x0 + (px / canvas.width) * (x1 - x0), y1 - (py / canvas.height) * (y1 - y0)];
}

export function drawPoints(ctx, bounds, points, colour, radius = 1.6) {
  ctx.fillStyle = colour;
  for (const [x, y] of points) {
    const [px, py] = toPixel(ctx.canvas, bounds, x, y);
    ctx.beginPath();
    ctx.arc(px, py, radius, 0, 2 * Math.PI);
    ctx.fill();
  }
}

// Square bounds around points, padded by 15%.
export function boundsOf(points, fallback = [-3, 3, -3, 3]) {
  if (!points.length) return fallback;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const half = Math.max(x1 - x0, y1 - y0, 0.5) * 0.575;
  return [cx - half, cx + half, cy - half, cy + half];
}

const PALETTE = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037"];

// Line plot of several series {name: [[x, y], ...]} with a legend and the axes' ranges.
export function drawCurves(ctx, series) {
  const { width, height } = ctx.canvas;
  ctx.clearRect(0, 0, width, height);
  const names = Object.keys(series).filter((k) => series[k].length);
  if (!names.length) return;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const k of names) for (const [x, y] of series[k]) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const left = 48, right = 8, top = 8, bottom = 20;
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const sy = (y) => top + ((y1 - y) / (y1 - y0)) * (height - top - bottom);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(left, top, width - left - right, height - top - bottom);
  ctx.fillStyle = "#444";
  ctx.font = "11px sans-serif";
  ctx.fillText(y1.toPrecision(3), 2, top + 9);
  ctx.fillText(y0.toPrecision(3), 2, height - bottom);
  ctx.fillText(`step ${x0}`, left, height - 5);
  ctx.fillText(`${x1}`, width - right - 30, height - 5);
  names.forEach((k, i) => {
    ctx.strokeStyle = PALETTE[i % PALETTE.length];
    ctx.beginPath();
    series[k].forEach(([x, y], j) => (j ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(k, left + 6, top + 14 + 13 * i);
  });
}
