/**
 * A run's report as one self-contained HTML file (report.html beside report.json): the
 * dashboard's charts and table with uPlot, the chart code, the styles and the data inlined,
 * so it opens offline and can be mailed around.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RunMetric, RunRecord } from '@grove/jobs';

const UI_FOLDER = join(import.meta.dirname, 'ui');
const UPLOT_FOLDER = join(dirname(createRequire(import.meta.url).resolve('uplot')), '..', 'dist');

const read = (folder: string, file: string) => readFileSync(join(folder, file), 'utf8');
/** Inline scripts and data must not close their own <script> element. */
const scriptSafe = (text: string) => text.replaceAll('</script', '<\\/script');
const html = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

export function renderReport(run: RunRecord, points: RunMetric[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>Grove run ${html(run.id)}</title>
<style>${read(UPLOT_FOLDER, 'uPlot.min.css')}</style>
<style>${read(UI_FOLDER, 'app.css')}</style>
</head>
<body>
<header><span class="brand">Grove</span><span>run ${html(run.id)}${run.spec.name ? ` — ${html(run.spec.name)}` : ''}</span></header>
<main>
<p>Status <span class="status ${html(run.status)}">${html(run.status)}</span>, created ${html(run.createdAt)}, last update ${html(run.updatedAt)}.</p>
<section><h2>Held-out bits per byte</h2><div id="table"></div></section>
<section><div id="charts" class="charts"></div></section>
<section><h2>Run spec</h2><pre>${html(JSON.stringify(run.spec, null, 2))}</pre></section>
</main>
<script>${scriptSafe(read(UPLOT_FOLDER, 'uPlot.iife.min.js'))}</script>
<script>${scriptSafe(read(UI_FOLDER, 'charts.js'))}</script>
<script id="points" type="application/json">${scriptSafe(JSON.stringify(points))}</script>
<script id="rows" type="application/json">${scriptSafe(JSON.stringify(run.rows ?? []))}</script>
<script>
  const points = JSON.parse(document.getElementById('points').textContent);
  document.getElementById('table').innerHTML = window.GroveCharts.table(JSON.parse(document.getElementById('rows').textContent));
  const container = document.getElementById('charts');
  for (const spec of window.GroveCharts.specs(points)) {
    const element = document.createElement('div');
    element.className = 'chart';
    container.appendChild(element);
    window.GroveCharts.render(element, spec);
  }
</script>
</body>
</html>
`;
}
