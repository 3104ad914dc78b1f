// Forms built from the models' declared settings (name, type, default, choices, help).

export function settingInput(spec) {
  const label = document.createElement("label");
  label.title = `${spec.help} (${spec.describe})`;
  label.append(spec.name);
  let input;
  if (spec.choices) {
    input = document.createElement("select");
    for (const choice of spec.choices) {
      const option = document.createElement("option");
      option.value = JSON.stringify(choice);
      option.textContent = String(choice);
      option.selected = choice === spec.default;
      input.append(option);
    }
  } else if (spec.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(spec.default);
  } else {
    input = document.createElement("input");
    const numeric = /^(int|float)( \| None)?$/.test(spec.type);
    input.type = numeric ? "number" : "text";
    if (numeric) input.step = "any";
    input.value = spec.default === null ? "" : (numeric ? spec.default : JSON.stringify(spec.default));
    input.placeholder = spec.type.includes("None") ? "None" : "";
  }
  input.name = spec.name;
  input.dataset.type = spec.type;
  input.dataset.initial = JSON.stringify(spec.default);
  label.append(input);
  return label;
}

// The value of an input in JSON terms; undefined when it still holds its default.
export function settingValue(input) {
  let value;
  if (input.type === "checkbox") value = input.checked;
  else if (input.tagName === "SELECT") value = JSON.parse(input.value);
  else if (input.value.trim() === "") value = null;
  else if (input.type === "number") value = Number(input.value);
  else {
    try { value = JSON.parse(input.value); } catch { value = input.value; }
  }
  return JSON.stringify(value) === input.dataset.initial ? undefined : value;
}

export function fillSettings(container, specs) {
  container.replaceChildren(...specs.map(settingInput));
}

export function readSettings(container) {
  const out = {};
  for (const input of container.querySelectorAll("input, select")) {
    const value = settingValue(input);
    if (value !== undefined) out[input.name] = value;
  }
  return out;
}
