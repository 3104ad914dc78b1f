// The 2-D playground: data (a toy set, drawn or uploaded points), a model and its settings,
// and a training watched live through Server-Sent Events.
import { api } from "./api.js";
import {
  boundsOf, decodeBytes, drawCurves, drawHeatmap, drawPoints, toData,
} from "./draw.js";
import { fillSettings, readSettings } from "./settings.js";

const $ = (id) => document.getElementById(id);
const TOY = ["moons", "circles", "8gaussians", "25gaussians", "ring8", "checkerboard",
  "spirals", "pinwheel", "rings"];

// What the page shows; window.lab exposes it to tests and benchmarks.
const state = {
  source: "moons", points: [], labels: null, numClasses: null, bounds: [-3, 3, -3, 3],
  models: [], job: null, events: null, curves: {}, picture: null,
  pictures: 0, updates: 0, heatmapMs: [], status: "idle", pressedAt: null, firstPictureMs: null,
};
window.lab = state;

function drawMain() {
  const canvas = $("main-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const picture = state.picture;
  if (picture) {
    const map = picture.heatmap;
    state.heatmapMs.push(drawHeatmap(ctx, decodeBytes(map.b64), map.res));
    $("heat-legend").textContent = `heatmap: ${map.kind} (${map.lo.toPrecision(3)} to ` +
      `${map.hi.toPrecision(3)}), white dots: data, orange dots: samples at step ${picture.step}`;
  }
  drawPoints(ctx, state.bounds, state.points, picture ? "rgba(255,255,255,0.8)" : "#37474f", 1.4);
  if (picture) drawPoints(ctx, state.bounds, picture.samples, "#ff6d00", 1.8);
}

function drawStages(stages) {
  const strip = $("stages");
  while (strip.children.length < stages.length) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 120;
    strip.append(canvas);
  }
  while (strip.children.length > stages.length) strip.lastChild.remove();
  stages.forEach((cloud, i) => {
    const ctx = strip.children[i].getContext("2d");
    ctx.clearRect(0, 0, 120, 120);
    const last = i === stages.length - 1;
    drawPoints(ctx, last ? [-3.5, 3.5, -3.5, 3.5] : boundsOf(cloud), cloud,
      `hsl(${200 - (160 * i) / Math.max(1, stages.length - 1)}, 70%, 40%)`, 1.1);
  });
  $("stages-view").hidden = false;
}

function drawDiffusion() {
  const view = state.picture && state.picture.diffusion;
  if (!view) return;
  const slider = $("t-slider");
  slider.max = view.t.length - 1;
  const i = Math.min(Number(slider.value), view.t.length - 1);
  const t = view.t[i];
  $("t-label").textContent = t < 0 ? "t = 0 (data)" : `t = ${t + 1}`;
  const bounds = state.bounds;
  for (const [id, clouds] of [["forward-canvas", view.forward], ["reverse-canvas", view.reverse]]) {
    const ctx = $(id).getContext("2d");
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    drawPoints(ctx, bounds, clouds[i], id.startsWith("forward") ? "#1565c0" : "#e65100", 1.2);
  }
  $("diffusion-view").hidden = false;
}

function showStatus(update) {
  const status = $("status");
  state.status = update.status;
  status.dataset.step = update.step;
  status.dataset.status = update.status;
  const of = update.steps ? ` / ${update.steps}` : "";
  status.textContent = `${update.model} · ${update.status} · step ${update.step}${of}` +
    ` · ${update.watchers} watching`;
  const running = update.status === "running" || update.status === "starting";
  const paused = update.status === "paused";
  const final = ["done", "stopped", "error"].includes(update.status);
  $("pause").disabled = !running;
  $("resume").disabled = !paused;
  $("step").disabled = !paused;
  $("stop").disabled = final;
  $("train").disabled = !final && state.job !== null;
  if (update.error) {
    $("error").hidden = false;
    $("error").textContent = update.error;
  }
  if (update.eval) {
    const e = update.eval;
    const parts = ["bits_per_dim", "mmd2", "precision", "recall"].filter((k) => k in e)
      .map((k) => `${k} ${e[k].toPrecision(3)}`);
    $("eval").textContent = `test split: ${parts.join(", ")}`;
  }
}

function applyUpdate(update) {
  state.updates += 1;
  showStatus(update);
  for (const point of update.points) {
    for (const [key, value] of Object.entries(point)) {
      const validation = key.startsWith("val_") && !key.endsWith("bpd");
      if (!(key.startsWith("loss_") || validation)) continue;
      (state.curves[key] ||= []).push([point.step, value]);
    }
  }
  if (update.points.length) drawCurves($("loss-canvas").getContext("2d"), state.curves);
  if (update.picture) {
    state.picture = update.picture;
    state.pictures += 1;
    if (state.firstPictureMs === null && state.pressedAt) {
      state.firstPictureMs = performance.now() - state.pressedAt;  // press to first picture
    }
    $("main-canvas").dataset.pictures = state.pictures;
    drawMain();
    if (update.picture.stages) drawStages(update.picture.stages);
    drawDiffusion();
  }
  if (["done", "stopped", "error"].includes(update.status)) {
    state.events.close();
    state.events = null;
  }
}

// Follow a job: any number of tabs can do this for the same job.
export function watch(job) {
  if (state.events) state.events.close();
  state.job = job;
  state.curves = {};
  state.picture = null;
  state.firstPictureMs = null;
  if (job.bounds) state.bounds = job.bounds;
  $("error").hidden = true;
  $("eval").textContent = "";
  $("stages-view").hidden = true;
  $("diffusion-view").hidden = true;
  fillLabels(job.conditional ? job.num_classes : null);
  state.events = new EventSource(`/api/jobs/${job.id}/events`);
  state.events.onmessage = (message) => applyUpdate(JSON.parse(message.data));
}

function fillLabels(numClasses) {
  const select = $("label-select");
  select.replaceChildren(new Option("every class", ""));
  for (let k = 0; k < (numClasses || 0); k++) select.append(new Option(`class ${k}`, String(k)));
  select.disabled = !numClasses;
}

async function loadData(name) {
  state.source = name;
  if (name === "draw") {
    state.points = [];
    state.labels = null;
    state.numClasses = null;
  } else {
    const data = await api(`/api/data/${name}`);
    state.points = data.points;
    state.labels = data.labels;
    state.numClasses = data.numClasses ?? data.num_classes;
    state.bounds = boundsOf(state.points);
  }
  $("conditional").disabled = name === "draw" || !state.numClasses;
  if ($("conditional").disabled) $("conditional").checked = false;
  showCount();
  state.picture = null;
  drawMain();
}

function showCount() {
  const what = state.source === "draw" ? "your points" : `${state.source} (training split preview)`;
  $("data-count").textContent = `${state.points.length} ${what}`;
}

function selectModel(name) {
  const model = state.models.find((m) => m.name === name);
  $("model-doc").textContent = model.doc;
  fillSettings($("model-settings"), model.settings);
  fillSettings($("train-settings"), model.train);
}

// Click and drag: points along the stroke, with a little spread so a line has width.
function enableDrawing() {
  const canvas = $("main-canvas");
  let drawing = false;
  const spread = () => 0.02 * (state.bounds[1] - state.bounds[0]);
  const add = (event) => {
    if (state.source !== "draw") {
      state.source = "draw";
      $("data-select").value = "draw";
      state.points = [];
      $("conditional").checked = false;
      $("conditional").disabled = true;
    }
    const rect = canvas.getBoundingClientRect();
    const [x, y] = toData(canvas, state.bounds, event.clientX - rect.left, event.clientY - rect.top);
    for (let i = 0; i < 3; i++) {
      const r = spread() * Math.sqrt(-2 * Math.log(Math.random() + 1e-12));
      const a = 2 * Math.PI * Math.random();
      state.points.push([x + r * Math.cos(a), y + r * Math.sin(a)]);
    }
    showCount();
    drawMain();
  };
  canvas.addEventListener("mousedown", (event) => { drawing = true; add(event); });
  canvas.addEventListener("mousemove", (event) => { if (drawing) add(event); });
  window.addEventListener("mouseup", () => { drawing = false; });
}

async function upload(file) {
  const type = file.name.endsWith(".npy") ? "application/octet-stream" : "text/csv";
  const response = await fetch("/api/upload", { method: "POST", headers: { "Content-Type": type }, body: file });
  const value = await response.json();
  if (!response.ok) throw new Error(value.error);
  state.source = "draw";
  $("data-select").value = "draw";
  state.points = value.points;
  state.bounds = boundsOf(state.points);
  showCount();
  drawMain();
}

function showError(error) {
  $("error").hidden = false;
  $("error").textContent = error.message;
}

async function train() {
  $("error").hidden = true;
  const body = {
    model: $("model-select").value,
    params: readSettings($("model-settings")),
    train: readSettings($("train-settings")),
    data: state.source === "draw" ? { points: state.points } : { name: state.source },
    conditional: $("conditional").checked,
    bounds: state.bounds,
    label: $("label-select").value === "" ? null : Number($("label-select").value),
  };
  state.pressedAt = performance.now();
  watch(await api("/api/jobs", body));
}

function control(cmd, value) {
  if (state.job) api(`/api/jobs/${state.job.id}/control`, { cmd, value }).catch(showError);
}

export async function initPlayground(models) {
  state.models = models;
  const dataSelect = $("data-select");
  for (const name of TOY) dataSelect.append(new Option(name, name));
  dataSelect.append(new Option("draw your own", "draw"));
  const modelSelect = $("model-select");
  for (const m of models) modelSelect.append(new Option(m.name, m.name));
  dataSelect.addEventListener("change", () => loadData(dataSelect.value).catch(showError));
  modelSelect.addEventListener("change", () => selectModel(modelSelect.value));
  $("clear-points").addEventListener("click", () => { dataSelect.value = "draw"; loadData("draw"); });
  $("upload").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]).catch(showError));
  $("train").addEventListener("click", () => train().catch(showError));
  for (const cmd of ["pause", "resume", "step", "stop"]) {
    $(cmd).addEventListener("click", () => control(cmd));
  }
  $("label-select").addEventListener("change", (e) =>
    control("label", e.target.value === "" ? null : Number(e.target.value)));
  $("t-slider").addEventListener("input", drawDiffusion);
  enableDrawing();
  fillLabels(null);
  selectModel(modelSelect.value);
  await loadData("moons");
  const live = (await api("/api/jobs")).filter((j) => !["done", "stopped", "error"].includes(j.status));
  if (live.length) watch(live[live.length - 1]);
}
