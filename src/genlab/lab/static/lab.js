// The lab page: two tabs, the playground and the runs folder.
import { initPlayground } from "./playground.js";
import { initRuns, refreshRuns } from "./runs.js";
import { api } from "./api.js";
import { decodeBytes, drawHeatmap } from "./draw.js";

window.labDraw = { decodeBytes, drawHeatmap };  // for benchmarks of the drawing itself

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll("section.tab")) {
    section.hidden = section.id !== name;
  }
  if (name === "runs") refreshRuns();
}

for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}

const models = await api("/api/models");
await initPlayground(models);
initRuns(models, showTab);
document.body.dataset.ready = "1";
