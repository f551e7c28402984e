// Minimal SVG line charts for the load-test report (no plotting dependency).

export interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function lineChart(o: {
  title: string;
  x: string;
  y: string;
  series: Series[];
  logX?: boolean;
  vline?: { x: number; label: string };
}): string {
  const W = 720,
    H = 420,
    L = 80,
    R = 170,
    T = 40,
    B = 60;
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (o.logX ? Math.log10(x) : x);
  const xs = pts.map(([x]) => fx(x)).concat(o.vline ? [fx(o.vline.x)] : []);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y1 = Math.max(...pts.map(([, y]) => y), 1e-9) * 1.08;
  const sx = (x: number) => L + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - (y / y1) * (H - T - B);
  const fmt = (v: number) =>
    v >= 1e6
      ? `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`
      : v >= 1e3
        ? `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`
        : v.toFixed(v < 10 ? 1 : 0);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">${esc(o.x)}</text>`,
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">${esc(o.y)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (y1 * i) / 4;
    out.push(
      `<line x1="${L - 4}" y1="${sy(v)}" x2="${W - R}" y2="${sy(v)}" stroke="#ddd"/>`,
      `<text x="${L - 8}" y="${sy(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (const x of [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b)) {
    out.push(`<text x="${sx(x)}" y="${H - B + 18}" text-anchor="middle">${fmt(x)}</text>`);
  }
  if (o.vline) {
    out.push(
      `<line x1="${sx(o.vline.x)}" y1="${T}" x2="${sx(o.vline.x)}" y2="${H - B}" stroke="#888" stroke-dasharray="5,4"/>`,
      `<text x="${sx(o.vline.x) + 4}" y="${T + 14}" fill="#555">${esc(o.vline.label)}</text>`,
    );
  }
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!,
      p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (p.length)
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ')}"/>`,
      );
    for (const [x, y] of p) out.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${c}"/>`);
    out.push(
      `<rect x="${W - R + 15}" y="${T + 20 * i}" width="12" height="12" fill="${c}"/>`,
      `<text x="${W - R + 32}" y="${T + 20 * i + 11}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
