// The Grove dashboard: a runs list and a live run page, routed by the URL hash.
(() => {
  const main = document.getElementById('main');
  let stream;

  const escapeHtml = (text) =>
    String(text).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
    );

  async function json(path, options) {
    // The header tells the API this request comes from the page itself, not a form on another site.
    const response = await fetch(path, { ...options, headers: { 'x-grove-ui': '1', ...options?.headers } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
    return body;
  }

  async function showRuns() {
    const { runs } = await json('/v1/runs');
    main.innerHTML = `<h2>Runs</h2>${
      runs.length === 0
        ? '<p class="empty">No runs yet: <code>grove submit run.json</code> or POST /v1/runs.</p>'
        : `<table id="runs"><tr><th>run</th><th>name</th><th>status</th><th>created</th></tr>${runs
            .map(
              (run) =>
                `<tr><td><a href="#/runs/${escapeHtml(run.id)}">${escapeHtml(run.id)}</a></td><td>${escapeHtml(run.name ?? '')}</td><td><span class="status ${escapeHtml(run.status)}">${escapeHtml(run.status)}</span></td><td>${escapeHtml(run.createdAt ?? '')}</td></tr>`,
            )
            .join('')}</table>`
    }`;
  }

  const jobLabel = (job) =>
    job.name === 'expert' ? `expert:${job.domain}${job.replica ? ` #${job.replica}` : ''}` : job.name;

  function jobBox(job) {
    const progress = typeof job.progress === 'object' && job.progress ? job.progress : {};
    const fraction =
      job.state === 'completed'
        ? 1
        : progress.steps
          ? progress.step / progress.steps
          : progress.total
            ? progress.done / progress.total
            : 0;
    const detail = progress.steps
      ? `step ${progress.step}/${progress.steps}`
      : progress.total
        ? `${progress.stage} ${progress.done}/${progress.total}`
        : '';
    return `<div class="job" data-job="${escapeHtml(job.id)}" data-state="${escapeHtml(job.state)}"><div class="name">${escapeHtml(jobLabel(job))}</div><div class="state">${escapeHtml(job.state)} ${escapeHtml(detail)}</div><div class="bar"><div style="width:${Math.round(Math.min(1, fraction) * 100)}%"></div></div></div>`;
  }

  function graph(run) {
    const byName = (name) => run.jobs.filter((job) => job.name === name);
    const experts = new Map();
    for (const job of byName('expert')) experts.set(job.domain, [...(experts.get(job.domain) ?? []), job]);
    const expertStage =
      [...experts.values()]
        .map((replicas) => `<div class="expert-group">${replicas.map(jobBox).join('')}</div>`)
        .join('') + byName('dense').map(jobBox).join('');
    const stages = [
      byName('seed').map(jobBox).join(''),
      expertStage,
      byName('merge').map(jobBox).join(''),
      byName('eval').map(jobBox).join(''),
    ];
    return stages.map((stage) => `<div class="stage">${stage}</div>`).join('<div class="arrow">→</div>');
  }

  async function showRun(id) {
    main.innerHTML = `<h2>Run <span id="run-id">${escapeHtml(id)}</span> <span id="run-status" class="status"></span></h2>
      <section><h2>Jobs</h2><div id="graph" class="graph"></div></section>
      <section><div id="charts" class="charts"></div></section>
      <section><h2>Held-out bits per byte</h2><div id="table"></div></section>
      <section><h2>Sample text</h2><div class="prompt"><select id="sample-model"></select><input id="sample-prompt" type="text" value="The " /><button id="sample-button">Sample</button></div><pre id="sample-output"></pre></section>`;
    const points = [];
    let drawn = 0;
    const redraw = () => {
      if (drawn === points.length && drawn > 0) return;
      drawn = points.length;
      const container = document.getElementById('charts');
      const specs = window.GroveCharts.specs(points);
      for (const spec of specs) {
        let element = container.querySelector(`[data-chart="${spec.name}"]`);
        if (!element) {
          element = document.createElement('div');
          element.className = 'chart';
          container.appendChild(element);
        }
        window.GroveCharts.render(element, spec);
      }
    };
    redraw();
    stream = new EventSource(`/v1/runs/${encodeURIComponent(id)}/events`);
    stream.addEventListener('points', (event) => {
      points.push(...JSON.parse(event.data));
      redraw();
    });
    stream.addEventListener('run', (event) => {
      const run = JSON.parse(event.data);
      if (!run) return;
      const status = document.getElementById('run-status');
      status.textContent = run.status;
      status.className = `status ${run.status}`;
      document.getElementById('graph').innerHTML = graph(run);
      document.getElementById('table').innerHTML = window.GroveCharts.table(run.rows);
      if (['completed', 'failed', 'cancelled'].includes(run.status)) loadModels(id);
    });
    stream.onerror = () => stream.close();
    document.getElementById('sample-button').addEventListener('click', () => sample(id));
    loadModels(id);
  }

  async function loadModels(id) {
    const select = document.getElementById('sample-model');
    if (!select) return;
    const { models } = await json(`/v1/runs/${encodeURIComponent(id)}/models`);
    const current = select.value;
    select.innerHTML = models
      .map((model) => `<option ${model === current ? 'selected' : ''}>${escapeHtml(model)}</option>`)
      .join('');
  }

  async function sample(id) {
    const output = document.getElementById('sample-output');
    const model = document.getElementById('sample-model').value;
    const prompt = document.getElementById('sample-prompt').value;
    output.textContent = 'Sampling…';
    try {
      const result = await json(`/v1/runs/${encodeURIComponent(id)}/sample`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt, tokens: 200 }),
      });
      output.textContent = result.prompt + result.text;
      output.dataset.done = 'true';
    } catch (error) {
      output.textContent = `Could not sample: ${error.message}`;
    }
  }

  async function route() {
    stream?.close();
    const match = /^#\/runs\/(.+)$/.exec(location.hash);
    try {
      if (match) await showRun(decodeURIComponent(match[1]));
      else await showRuns();
    } catch (error) {
      main.innerHTML = `<p class="empty">${escapeHtml(error.message)}</p>`;
    }
  }

  window.addEventListener('hashchange', route);
  route();
})();
