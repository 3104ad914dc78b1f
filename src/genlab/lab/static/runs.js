// The runs folder: a sortable table, the selected runs side by side, comparisons and reports.
import { api } from "./api.js";
import { drawCurves } from "./draw.js";
import { watch } from "./playground.js";

const $ = (id) => document.getElementById(id);
const COLUMNS = [
  ["run", "run"], ["model", "model"], ["data", "data"], ["state", "state"], ["step", "step"],
  ["bits_per_dim", "bits/dim"], ["nll_nats", "test NLL"], ["mmd2", "MMD²"],
  ["sliced_wasserstein", "sliced W"], ["energy_distance", "energy"], ["precision", "precision"],
  ["recall", "recall"], ["modes_hit", "modes"], ["memorization_ratio", "memorization"],
];
const TEXT = new Set(["run", "model", "data", "state"]);
const runs = { rows: [], sortKey: "run", ascending: true, selected: new Set(), showTab: null };
window.labRuns = runs;

function compare(a, b) {
  const missing = (v) => v === null || v === undefined;
  if (missing(a) || missing(b)) return missing(a) - missing(b);  // missing values last
  return typeof a === "number" ? a - b : String(a).localeCompare(String(b));
}

function format(key, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number" || key === "step" || key === "modes_hit") return String(value);
  return value.toPrecision(4);
}

function renderTable() {
  const head = $("runs-table").tHead;
  const row = document.createElement("tr");
  row.append(document.createElement("th"));
  for (const [key, title] of COLUMNS) {
    const th = document.createElement("th");
    th.textContent = title;
    th.dataset.key = key;
    if (key === runs.sortKey) th.className = runs.ascending ? "sorted-asc" : "sorted-desc";
    th.addEventListener("click", () => {
      runs.ascending = runs.sortKey === key ? !runs.ascending : true;
      runs.sortKey = key;
      renderTable();
    });
    row.append(th);
  }
  row.append(document.createElement("th"));
  head.replaceChildren(row);
  const sign = runs.ascending ? 1 : -1;
  const rows = [...runs.rows].sort((a, b) => {
    const order = compare(a[runs.sortKey], b[runs.sortKey]);
    const missing = a[runs.sortKey] == null || b[runs.sortKey] == null;
    return missing ? order : sign * order;
  });
  const body = $("runs-table").tBodies[0];
  body.replaceChildren(...rows.map(renderRow));
}

function renderRow(run) {
  const tr = document.createElement("tr");
  tr.dataset.run = run.run;
  const pick = document.createElement("input");
  pick.type = "checkbox";
  pick.checked = runs.selected.has(run.run);
  pick.addEventListener("change", () => {
    if (pick.checked) runs.selected.add(run.run); else runs.selected.delete(run.run);
    showSelected();
  });
  const first = document.createElement("td");
  first.append(pick);
  tr.append(first);
  for (const [key] of COLUMNS) {
    const td = document.createElement("td");
    td.textContent = format(key, run[key]);
    if (TEXT.has(key)) td.className = "text";
    if (key === "state" && run.error) td.title = run.error;
    tr.append(td);
  }
  const actions = document.createElement("td");
  if (run.job) {
    actions.append(button("watch", () => { runs.showTab("playground"); watch({ id: run.job, run: run.run }); }));
  } else if (run.from === "lab" && ["stopped", "interrupted", "error"].includes(run.state) && run.points) {
    actions.append(button("resume", async () => {
      const job = await api("/api/runs/resume", { run: run.run });
      runs.showTab("playground");
      watch(job);
    }));
  }
  tr.append(actions);
  return tr;
}

function button(text, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", action);
  return b;
}

async function showSelected() {
  const chosen = runs.rows.filter((r) => runs.selected.has(r.run));
  $("selected-samples").replaceChildren(...chosen.map((r) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `samples of ${r.run}`;
    img.src = `/api/runs/samples.png?run=${encodeURIComponent(r.run)}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `${r.run} (${r.model})`;
    figure.append(img, caption);
    return figure;
  }));
  const series = {};
  for (const r of chosen) {
    const records = await api(`/api/runs/metrics?run=${encodeURIComponent(r.run)}`);
    const key = records.length ? Object.keys(records[0]).find((k) => k.startsWith("loss_")) : null;
    if (key) series[`${r.run} ${key}`] = records.filter((x) => key in x).map((x) => [x.step, x[key]]);
  }
  drawCurves($("runs-curves").getContext("2d"), series);
}

export async function refreshRuns() {
  const value = await api("/api/runs");
  runs.rows = value.runs;
  renderTable();
  $("reports").replaceChildren(...value.reports.map((path) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/files/${path.split("/").map(encodeURIComponent).join("/")}`;
    a.textContent = path;
    a.target = "_blank";
    li.append(a);
    return li;
  }));
}

function checkboxes(container, names, checked) {
  container.replaceChildren(...names.map((name) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = checked.includes(name);
    label.append(box, ` ${name}`);
    return label;
  }));
}

async function followCompare(job) {
  $("compare-progress").value = job.progress;
  $("compare-status").textContent = `${job.status}: ${job.started} of ${job.trainings} trainings started`;
  $("compare-status").dataset.status = job.status;
  $("compare-log").textContent = job.log.join("\n");
  if (job.status === "running") {
    setTimeout(async () => followCompare(await api(`/api/compare/${job.id}`)), 500);
  } else {
    await refreshRuns();
  }
}

export function initRuns(models, showTab) {
  runs.showTab = showTab;
  $("refresh-runs").addEventListener("click", refreshRuns);
  checkboxes($("compare-data"), ["moons", "8gaussians", "25gaussians", "circles", "spirals"], ["moons"]);
  checkboxes($("compare-models"), models.map((m) => m.name), ["gmm", "histogram"]);
  $("compare-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = (id) => [...$(id).querySelectorAll("input:checked")].map((b) => b.value);
    try {
      const job = await api("/api/compare", {
        data: picked("compare-data"), models: picked("compare-models"),
        scale: Number($("compare-scale").value),
      });
      followCompare(job);
    } catch (error) {
      $("compare-status").textContent = error.message;
    }
  });
}
