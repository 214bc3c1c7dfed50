// Turns a run's metric points into uPlot charts and its rows into the eval table. Shared by
// the live dashboard and by the self-contained report.html (which inlines this file and uPlot).
((global) => {
  const PALETTE = [
    '#1f77b4',
    '#d62728',
    '#2ca02c',
    '#ff7f0e',
    '#9467bd',
    '#8c564b',
    '#e377c2',
    '#17becf',
    '#7f7f7f',
    '#bcbd22',
  ];

  const labelOf = (point) => (point.replica !== undefined ? `${point.job}#${point.replica}` : point.job);

  /** Adds (x, y) to the named series of a chart spec. */
  function add(spec, series, x, y) {
    if (typeof x !== 'number' || typeof y !== 'number' || !Number.isFinite(y)) return;
    if (!spec.series.has(series)) spec.series.set(series, new Map());
    spec.series.get(series).set(x, y);
  }

  function specs(points) {
    const charts = {
      loss: { title: 'Training loss (nats/byte) by step', x: 'step', series: new Map() },
      bpb: { title: 'Held-out bits per byte by step', x: 'step', series: new Map() },
      bytes: { title: 'Local-SGD: MB sent per round', x: 'round', series: new Map() },
      compression: { title: 'Local-SGD: compression ratio', x: 'round', series: new Map() },
      time: { title: 'Local-SGD: sync vs compute seconds per round', x: 'round', series: new Map() },
    };
    for (const point of points) {
      const label = labelOf(point);
      if (point.kind === 'round') {
        add(charts.bytes, label, point.round, point.bytesSent / 1e6);
        add(charts.compression, label, point.round, point.compressionRatio);
        add(charts.time, `${label} sync`, point.round, point.syncSeconds);
        add(charts.time, `${label} compute`, point.round, point.computeSeconds);
        continue;
      }
      if (point.loss !== undefined) add(charts.loss, label, point.step, point.loss);
      for (const [domain, value] of Object.entries(point.bitsPerByte ?? {}))
        add(charts.bpb, `${label} on ${domain}`, point.step, value);
    }
    return Object.entries(charts).map(([name, chart]) => ({ name, ...chart }));
  }

  /** uPlot wants one shared x array: the union of every series' x, with gaps as null. */
  function aligned(spec) {
    const xs = [...new Set([...spec.series.values()].flatMap((series) => [...series.keys()]))].sort((a, b) => a - b);
    const ys = [...spec.series.values()].map((series) => xs.map((x) => (series.has(x) ? series.get(x) : null)));
    return [xs, ...ys];
  }

  /** Draws (or redraws) one chart into `element`, which gets data-chart and data-series attributes. */
  function render(element, spec) {
    element.dataset.chart = spec.name;
    element.dataset.series = String(spec.series.size);
    element.innerHTML = `<h3>${spec.title}</h3>`;
    if (spec.series.size === 0) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent =
        spec.name === 'loss' || spec.name === 'bpb'
          ? 'No points yet.'
          : 'No Local-SGD rounds in this run (experts with one replica).';
      element.appendChild(empty);
      return;
    }
    const names = [...spec.series.keys()];
    const options = {
      width: Math.max(320, element.clientWidth - 16),
      height: 260,
      scales: { x: { time: false } },
      // Rounds and steps are whole numbers: no ticks between them.
      axes: [{ label: spec.x, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, {}],
      series: [
        { label: spec.x },
        ...names.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], spanGaps: true, width: 1.5 })),
      ],
    };
    new global.uPlot(options, aligned(spec), element);
  }

  const escapeHtml = (text) =>
    String(text).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
    );

  /** The eval table as HTML: model × domain, the best score of each domain in bold. */
  function table(rows) {
    if (!rows || rows.length === 0) return '<p class="empty">The table appears when the eval job finishes.</p>';
    const domains = [...new Set(rows.map((row) => row.domain))];
    const models = [...new Set(rows.map((row) => row.model))];
    const value = (model, domain) => rows.find((row) => row.model === model && row.domain === domain)?.bitsPerByte;
    const best = Object.fromEntries(
      domains.map((domain) => [domain, Math.min(...models.map((m) => value(m, domain) ?? Infinity))]),
    );
    return `<table id="eval-table"><tr><th>model</th>${domains.map((d) => `<th>${escapeHtml(d)}</th>`).join('')}</tr>${models
      .map(
        (model) =>
          `<tr><td>${escapeHtml(model)}</td>${domains
            .map((domain) => {
              const v = value(model, domain);
              return `<td class="${v === best[domain] ? 'best' : ''}">${v === undefined ? '' : v.toFixed(3)}</td>`;
            })
            .join('')}</tr>`,
      )
      .join('')}</table>`;
  }

  global.GroveCharts = { specs, render, table };
})(window);
