// ddpm serve's page: plain JavaScript, no framework. Charts are SVG drawn here; the page polls the API for new rows.
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const W = 640, H = 300, M = { left: 56, right: 16, top: 12, bottom: 34 };
let server = null, runName = null, run = null, loss = [], metrics = null, pollTimer = null, runsTimer = null;

const $ = id => document.getElementById(id);
const fmt = v => v === null || v === undefined || v === "NaN" || !isFinite(v) ? "" : (Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 0.1 ? v.toFixed(3) : v.toPrecision(3));

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
  return response.json();
}

function el(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// TensorBoard's smoothing: an exponential moving average debiased by 1 - w^n, so the first values are not pulled to 0
// and the smoothed line starts among the raw points instead of above them.
function smooth(values, weight) {
  let last = 0, n = 0;
  return values.map(v => {
    if (!isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return weight === 0 ? v : last / (1 - Math.pow(weight, n));
  });
}

// Ticks at round values; with whole = true, only at whole numbers (steps), never 467.2, 467.4, ...
function ticks(min, max, count, whole) {
  if (!(max > min)) return [min];
  let step = Math.pow(10, Math.floor(Math.log10((max - min) / count)));
  for (const f of [1, 2, 5, 10]) if ((max - min) / (step * f) <= count) { step *= f; break; }
  if (whole) step = Math.max(1, Math.round(step));
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(whole ? Math.round(v) : +v.toPrecision(12));
  return out;
}

function frame(svg, xs, ys, wholeX) {
  svg.innerHTML = "";
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const X = x => M.left + (x - x0) / (x1 - x0) * (W - M.left - M.right);
  const Y = y => H - M.bottom - (y - y0) / (y1 - y0) * (H - M.top - M.bottom);
  const grid = el("g", { class: "grid" }, svg), axis = el("g", { class: "axis" }, svg);
  el("line", { x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom }, axis);
  el("line", { x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom }, axis);
  for (const t of ticks(x0, x1, 6, wholeX)) {
    el("line", { x1: X(t), y1: M.top, x2: X(t), y2: H - M.bottom }, grid);
    const label = el("text", { x: X(t), y: H - M.bottom + 16, "text-anchor": "middle", "data-tick": t }, axis);
    label.textContent = t;
  }
  for (const t of ticks(y0, y1, 5, false)) {
    el("line", { x1: M.left, y1: Y(t), x2: W - M.right, y2: Y(t) }, grid);
    const label = el("text", { x: M.left - 6, y: Y(t) + 4, "text-anchor": "end" }, axis);
    label.textContent = fmt(t);
  }
  const title = el("text", { x: (W + M.left) / 2, y: H - 4, "text-anchor": "middle" }, axis);
  title.textContent = "step";
  return { X, Y };
}

function empty(svg, text) {
  svg.innerHTML = "";
  const t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg);
  t.textContent = text;
}

function drawLoss() {
  const svg = $("loss-chart");
  if (loss.length === 0) return empty(svg, "no loss rows yet");
  const weight = +$("smoothing").value;
  const steps = loss.map(p => p.step), raw = loss.map(p => p.loss), smoothed = smooth(raw, weight);
  const { X, Y } = frame(svg, steps, raw.concat(smoothed).filter(isFinite), true);
  el("polyline", { class: "raw", points: loss.map((p, i) => `${X(p.step)},${Y(raw[i])}`).join(" ") }, svg);
  const points = el("g", { id: "loss-points" }, svg);
  for (const p of loss) el("circle", { class: "raw", r: 1.6, cx: X(p.step), cy: Y(p.loss), "data-step": p.step, "data-loss": p.loss }, points);
  el("path", { id: "loss-smoothed", class: "smoothed", d: "M" + loss.map((p, i) => `${X(p.step)},${Y(smoothed[i])}`).join("L") }, svg);
}

function drawEvaluation() {
  const svg = $("eval-chart");
  const rows = (metrics && metrics.evaluation) || [];
  const useFid = rows.some(r => isFinite(r.fid) && r.samples >= 2048) || !rows.some(r => isFinite(r.kidMean));
  $("eval-metric").textContent = useFid ? "FID" : "KID";
  const value = r => +(useFid ? r.fid : r.kidMean);
  const valid = rows.filter(r => isFinite(value(r)));
  if (valid.length === 0) return empty(svg, "no evaluations (training.eval.every in the spec)");
  const { X, Y } = frame(svg, valid.map(r => r.step), valid.map(value), true);
  const legend = el("g", { class: "legend" }, svg);
  ["ema", "raw"].forEach((weights, i) => {
    const series = valid.filter(r => r.weights === weights).sort((a, b) => a.step - b.step);
    if (series.length === 0) return;
    const g = el("g", { class: "series-" + weights, "data-weights": weights }, svg);
    el("path", { d: "M" + series.map(r => `${X(r.step)},${Y(value(r))}`).join("L") }, g);
    for (const r of series) el("circle", { r: 3, cx: X(r.step), cy: Y(value(r)), "data-step": r.step, "data-weights": weights, "data-value": value(r) }, g);
    const key = el("g", { class: "series-" + weights }, legend);
    el("rect", { x: W - 120, y: M.top + 4 + i * 16, width: 10, height: 10 }, key);
    const t = el("text", { x: W - 104, y: M.top + 13 + i * 16 }, key);
    t.textContent = weights === "ema" ? "EMA weights" : "raw weights";
  });
}

// Grids of small images (8 to 32 pixels) are tiny on screen: shown at a whole multiple of their size, at least ~256 pixels wide.
function enlarge(img) {
  img.addEventListener("load", () => {
    const k = Math.max(1, Math.floor(256 / img.naturalWidth));
    img.style.width = img.naturalWidth * k + "px";
  });
}

function drawSamples() {
  const box = $("samples");
  const grids = (metrics && metrics.samples) || [];
  if (box.dataset.count === String(grids.length)) return;
  box.dataset.count = grids.length;
  box.innerHTML = "";
  for (const g of grids.slice(-8).reverse()) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    enlarge(img);
    img.src = g.url; img.alt = "samples at step " + g.step; img.dataset.step = g.step;
    const caption = document.createElement("figcaption");
    caption.textContent = "step " + g.step;
    figure.append(img, caption);
    box.appendChild(figure);
  }
  if (grids.length === 0) box.textContent = "none yet";
}

function showSummary() {
  if (!run) return;
  $("run-title").textContent = `${run.name}: ${run.model || "?"}`;
  $("run-status").innerHTML = "";
  const status = document.createElement("span");
  status.className = "status-" + run.status; status.id = "run-state"; status.textContent = run.status;
  $("run-status").append(status, ` at step ${run.step}${run.totalSteps ? " of " + run.totalSteps : ""}` +
    (run.lastLoss !== null ? `, loss ${fmt(run.lastLoss)}` : "") + (run.bestFid !== null ? `, best FID ${fmt(run.bestFid)}` : ""));
  const form = $("sample-form");
  form.classList.toggle("unconditional", !run.classNames);
  const checkpoint = $("f-checkpoint");
  const wanted = run.checkpoints.join(",");
  if (checkpoint.dataset.options !== wanted) {
    checkpoint.dataset.options = wanted;
    checkpoint.innerHTML = run.checkpoints.map(c => `<option>${c}</option>`).join("");
  }
  $("f-submit").disabled = run.checkpoints.length === 0;
  $("f-class-names").innerHTML = (run.classNames || []).concat(["all", "none"]).map(c => `<option value="${c}">`).join("");
  if (run.classNames && $("f-guidance").value === "") $("f-guidance").value = run.guidance;
}

async function poll() {
  if (!runName) return;
  const name = runName;
  try {
    const since = loss.length ? loss[loss.length - 1].step : -1;
    const m = await getJson(`/api/runs/${encodeURIComponent(name)}/metrics?since=${since}`);
    if (name !== runName) return;
    metrics = m; run = m.run;
    if (m.loss.length) loss = loss.concat(m.loss);
    else if (since > m.run.step) loss = loss.filter(p => p.step <= m.run.step); // a resumed run trained those steps again
    // The open run's row follows its view, not the slower refresh of the whole table.
    const row = [...document.querySelectorAll("#runs tr[data-run]")].find(r => r.dataset.run === name);
    if (row) fillRow(row, m.run);
    showSummary(); drawLoss(); drawEvaluation(); drawSamples();
  } catch (e) {
    $("run-status").textContent = "cannot read the run: " + e.message;
  }
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, run && run.status === "training" ? 1500 : 5000);
}

function fillRow(row, r) {
  row.dataset.run = r.name; row.dataset.status = r.status; row.dataset.step = r.step;
  row.innerHTML = "";
  const cells = [r.name, r.model || "", r.totalSteps ? `${r.step} / ${r.totalSteps}` : String(r.step), r.status, fmt(r.lastLoss), fmt(r.bestFid)];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (i === 3) td.className = "status-" + r.status;
    if (i >= 4) td.classList.add("number");
    row.appendChild(td);
  });
}

async function loadRuns() {
  try {
    const runs = await getJson("/api/runs");
    const body = document.querySelector("#runs tbody");
    body.innerHTML = "";
    for (const r of runs) {
      const row = document.createElement("tr");
      if (r.name === runName) row.className = "selected";
      fillRow(row, r);
      row.addEventListener("click", () => { location.hash = "run=" + encodeURIComponent(r.name); });
      body.appendChild(row);
    }
    $("runs-empty").hidden = runs.length > 0;
  } catch (e) {
    $("runs-empty").hidden = false; $("runs-empty").textContent = "cannot list the runs: " + e.message;
  }
  clearTimeout(runsTimer);
  runsTimer = setTimeout(loadRuns, 5000);
}

function route() {
  const match = /^#run=(.+)$/.exec(location.hash);
  const name = match ? decodeURIComponent(match[1]) : null;
  if (name === runName) return;
  runName = name; loss = []; metrics = null; run = null;
  $("samples").dataset.count = "";
  $("run-view").hidden = !name;
  $("sample-result").hidden = true;
  $("sample-status").textContent = "";
  document.querySelectorAll("#runs tr[data-run]").forEach(r => r.classList.toggle("selected", r.dataset.run === name));
  if (name) poll();
}

async function sample(event) {
  event.preventDefault();
  const form = $("sample-form"), status = $("sample-status"), progress = $("sample-progress");
  form.querySelectorAll(".invalid").forEach(f => f.classList.remove("invalid"));
  status.className = ""; $("sample-result").hidden = true;
  const body = { async: true, checkpoint: $("f-checkpoint").value, weights: $("f-weights").value, sampler: $("f-sampler").value,
                 seed: Number($("f-seed").value), count: Number($("f-count").value) };
  if ($("f-sampler").value !== "ddpm") body.steps = Number($("f-steps").value);
  if (run && run.classNames) {
    if ($("f-class").value !== "") body.class = $("f-class").value;
    if ($("f-guidance").value !== "") body.guidance = Number($("f-guidance").value);
  }
  $("f-submit").disabled = true;
  try {
    const response = await fetch(`/api/runs/${encodeURIComponent(runName)}/sample`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let job = await response.json();
    if (!response.ok) return fail(job);
    progress.hidden = false; progress.value = 0;
    while (job.status === "queued" || job.status === "running") {
      status.textContent = job.status === "queued" ? "waiting for a worker" : `sampling: ${job.progress ? job.progress.modelCalls + " of " + job.progress.totalModelCalls + " model calls" : "loading"}`;
      progress.value = job.progress ? job.progress.fraction : 0;
      await new Promise(r => setTimeout(r, 250));
      job = await getJson(`/api/jobs/${job.id}`);
    }
    progress.hidden = true;
    if (job.status !== "done") return fail(job);
    progress.value = 1;
    status.textContent = `done: ${job.description}`;
    $("result-image").src = job.result; $("result-image").dataset.count = job.progress ? job.progress.count : "";
    $("result-link").href = job.result; $("result-link").download = `samples-${job.id}.png`;
    $("sample-result").hidden = false;
  } catch (e) {
    fail({ error: e.message });
  } finally {
    $("f-submit").disabled = false;
  }
}

function fail(error) {
  $("sample-progress").hidden = true;
  $("sample-status").className = "error";
  $("sample-status").textContent = error.error || "sampling failed";
  if (error.field && $("f-" + error.field)) $("f-" + error.field).classList.add("invalid");
}

async function start() {
  server = await getJson("/api/server");
  $("server-info").textContent = `${server.runsFolder} · ${server.workers} workers, queue ${server.queueCapacity}, up to ${server.maxCount} images per request`;
  $("f-sampler").innerHTML = server.samplers.map(s => `<option${s === server.defaultSampler ? " selected" : ""}>${s}</option>`).join("");
  $("f-count").max = server.maxCount;
  $("smoothing").addEventListener("input", () => { $("smoothing-value").textContent = (+$("smoothing").value).toFixed(2); drawLoss(); });
  $("sample-form").addEventListener("submit", sample);
  enlarge($("result-image"));
  window.addEventListener("hashchange", route);
  await loadRuns();
  route();
}

start();
