// The model owners' page: reads the /v1 endpoints with the key kept in session storage.
"use strict";

const KEY = "alloop.apiKey";
const ORIGINS = { evaluation: "drawn at random from the stream", "test-file": "from your test file" };
const $ = (id) => document.getElementById(id);
let settings = null;
let task = "classification";
let versions = null; // the last /v1/models answer of the task shown

// ------------------------------------------------------------------ requests and sign-in

class Unauthorized extends Error {}

async function call(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY);
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized("the API key is missing or not valid");
  return response;
}

async function json(path, options) {
  const response = await call(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `${path} answered ${response.status}`);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const one of [].concat(value)) if (one !== "" && one != null) search.append(name, one);
  }
  return search.toString();
}

function showSignIn(error) {
  $("app").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("sign-in-error").hidden = !error;
  $("sign-in-error").textContent = error || "";
  $("key").focus();
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  await start();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  showSignIn();
}

// ------------------------------------------------------------------ small DOM helpers

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

const fixed3 = (value) => (value == null ? "–" : Number(value).toFixed(3));
const signed = (value) => (value > 0 ? "+" : "") + fixed3(value);
const answer = (value) =>
  Array.isArray(value)
    ? value.map((v) => (typeof v === "object" ? `${v.text} ${v.label}` : v)).join(", ") || "∅"
    : value;

function say(text, error = false) {
  const message = $("message");
  message.textContent = text;
  message.className = error ? "error" : "";
  message.hidden = !text;
}

function ask(question) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }),
  );
}

// ------------------------------------------------------------------ versions

async function showVersions() {
  const list = await json(`/v1/models?${query({ task })}`);
  versions = list;
  const serving = list.promoted
    ? `${list.promoted} is promoted; this API serves ${list.served || "nothing yet"}.`
    : "No version is promoted yet.";
  $("serving").textContent = `${serving} Earlier promotions: ${list.history.join(", ") || "none"}.`;
  $("rollback").disabled = list.history.length === 0;
  const rows = list.models.map((card) => {
    const evaluation = card.metrics && card.metrics.evaluation;
    const state = [card.promoted && "promoted", card.served && "serves"].filter(Boolean);
    const { metrics, ...shown } = card;
    const details = el("details", {}, el("summary", {}, "card"),
      el("pre", {}, JSON.stringify({ ...shown, gate: metrics && metrics.gate }, null, 2)));
    const action = card.promoted
      ? ""
      : el("button", { type: "button", class: "promote", "data-version": card.version,
          onclick: () => promote(card.version) }, "Promote");
    return [card.version, card.kind, card.created_at.slice(0, 19).replace("T", " "),
      card.counts.train ?? "–", card.counts.test ?? "–",
      evaluation ? fixed3(evaluation.macro.f1) : "not evaluated", state.join(", "),
      el("span", {}, action, details)];
  });
  fill($("versions-table").tBodies[0], rows);
  [...$("versions-table").tBodies[0].rows].forEach((row, i) => {
    row.dataset.version = list.models[i].version;
    if (list.models[i].promoted) row.classList.add("promoted");
  });
  return list;
}

async function promote(version) {
  if (!(await ask(`Promote ${version} (${task})? This API serves it at once; the scorers follow.`)))
    return;
  await change(`/v1/models/${encodeURIComponent(version)}/promote?${query({ task })}`);
}

async function rollback() {
  const to = versions.history[versions.history.length - 1];
  const question = `Roll back ${task} from ${versions.promoted} to ${to}? This API serves it at once.`;
  if (!(await ask(question))) return;
  await change(`/v1/models/rollback?${query({ task })}`);
}

async function change(path) {
  try {
    const state = await json(path, { method: "POST" });
    say(`${state.promoted} is promoted and serves (${task}).`);
  } catch (error) {
    if (error instanceof Unauthorized) return showSignIn(error.message);
    say(error.message, true);
  }
  await showTask();
}

// ------------------------------------------------------------------ curves

function describeTestSet(evaluated) {
  if (!evaluated) {
    $("test-set").textContent = "No version is evaluated yet: training rounds score every " +
      "version on the test set drawn at random from the stream.";
    return;
  }
  const origins = Object.entries(evaluated.test_origins).map(([o, n]) => `${n} ${ORIGINS[o] || o}`);
  $("test-set").textContent = `Every point is scored on the current test set: ` +
    `${evaluated.test_size} test documents (${origins.join(", ") || "origins unknown"}). ` +
    `Filled points (●) are versions that were promoted.`;
}

async function showCurve() {
  const metric = $("curve-metric").value;
  const label = $("curve-label").value;
  const params = { task, metric, label };
  // Both asked first, then both shown: the points and the picture change together.
  const [[curve], picture] = await Promise.all([json(`/v1/curves?${query(params)}`),
    call(`/v1/curves?${query({ ...params, format: "svg" })}`)]);
  const drawn = await picture.blob();
  fill($("curve-table").tBodies[0], curve.points.map((p) =>
    [p.version, p.labels, p.test_size, fixed3(p.value), p.promoted ? "●" : ""]));
  const image = $("curve-image");
  image.hidden = curve.points.length === 0;
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(drawn);
  image.alt = `${metric}${label ? ` of ${label}` : ""} against the number of labels`;
  return curve;
}

// ------------------------------------------------------------------ deltas

async function showDelta(base, head) {
  const delta = await json(`/v1/evaluations/deltas?${query({ task, base, head })}`);
  $("delta-base").value = delta.base;
  $("delta-head").value = delta.head;
  const shown = ["macro_f1", "micro_f1", "accuracy", "unseen_recall"]
    .filter((name) => delta[name]).map((name) => delta[name])
    .concat(delta.per_label || delta.per_type);
  fill($("delta-table").tBodies[0], shown.map((m) =>
    [m.name, m.label || "", fixed3(m.base), fixed3(m.head), signed(m.delta),
      `[${signed(m.ci_low)}, ${signed(m.ci_high)}]`, m.support]));
  [...$("delta-table").tBodies[0].rows].forEach((row, i) => {
    row.classList.toggle("better", shown[i].ci_low > 0);
    row.classList.toggle("worse", shown[i].ci_high < 0);
  });
  $("delta-summary").textContent = `${delta.head} against ${delta.base} on the ` +
    `${delta.common_test_size} test documents both were scored on; ` +
    `${Math.round(delta.confidence * 100)}% paired bootstrap intervals.`;
  for (const kind of ["fixed", "broken"]) {
    $(`${kind}-count`).textContent = `(${delta[kind].length})`;
    fill($(`${kind}-table`).tBodies[0], delta[kind].map((f) =>
      [f.id, f.text ?? "", answer(f.gold), answer(f.base), answer(f.head)]));
  }
  return delta;
}

function clearDelta(why) {
  $("delta-summary").textContent = why;
  for (const table of ["delta-table", "fixed-table", "broken-table"]) fill($(table).tBodies[0], []);
  for (const kind of ["fixed", "broken"]) $(`${kind}-count`).textContent = "";
}

function chooseVersions(curve) {
  const versions = curve.points.map((p) => p.version);
  for (const id of ["delta-base", "delta-head"]) {
    $(id).replaceChildren(...versions.map((v) => el("option", { value: v }, v)));
  }
}

// ------------------------------------------------------------------ queue and drift

async function showQueue() {
  const q = await json(`/v1/queue?${query({ task })}`);
  const figures = [
    ["pending in Argilla", q.pending_in_argilla ?? "Argilla cannot be reached"],
    ["answers", q.answers],
    ["labelled documents", q.labelled],
    ["not yet trained", q.not_yet_trained],
    ["agreement", q.agreement == null ? "–" : fixed3(q.agreement)],
    ["documents by status", Object.entries(q.documents).map(([s, n]) => `${s} ${n}`).join(", ") || "none"],
    ["last round", q.last_round_at
      ? `${q.last_round_at.slice(0, 19).replace("T", " ")}, ${Math.round(q.last_round_seconds)} s, ` +
        `made ${q.last_round_version || "nothing"}${q.last_round_promoted ? " (promoted)" : ""}`
      : "none yet"],
  ];
  $("queue-figures").replaceChildren(...figures.flatMap(([name, value]) =>
    [el("dt", {}, name), el("dd", { "data-figure": name }, value)]));
  $("argilla-link").replaceChildren(q.argilla_url
    ? el("a", { href: q.argilla_url, target: "_blank", rel: "noopener" }, "Label in Argilla")
    : "The task's Argilla dataset cannot be linked (Argilla not reached, or no dataset yet).");
  return q;
}

const DRIFT_WINDOWS = 200; // drawn in the picture (the endpoint's default)
const DRIFT_ROWS = 10; // the newest windows in the table
const crossed = (report) => report.results.filter((m) => m.crossed).map((m) => m.method);

async function showDrift() {
  const response = await call(`/v1/drift?${query({ last: DRIFT_WINDOWS })}`);
  const reports = await response.json();
  const why = !response.ok ? reports.detail || "Drift cannot be read."
    : reports.length === 0 ? "No drift report yet: with ALLOOP_DRIFT__ENABLED=true the scorers " +
      "report every window of the tagged stream once they have tagged the reference windows."
    : "";
  $("drift-chart").hidden = Boolean(why);
  if (why) {
    $("drift-summary").textContent = why;
    return reports;
  }
  const alarms = reports.filter((r) => r.drift);
  const newest = reports[reports.length - 1];
  const last = alarms.length
    ? `; the newest at window ${alarms[alarms.length - 1].window} ` +
      `(${crossed(alarms[alarms.length - 1]).join(", ")})` : "";
  $("drift-summary").textContent = `${reports.length} windows of ${newest.documents} tagged ` +
    `documents, each figure against its threshold (dashed), compared with the ` +
    `${newest.reference_documents} reference documents of the version serving then; ` +
    `${alarms.length} crossed a threshold (red points; ● in the table, whose cells read ` +
    `score / threshold)${last}. The same stream for every task.`;
  const picture = await call(`/v1/drift?${query({ last: DRIFT_WINDOWS, format: "svg" })}`);
  const image = $("drift-image");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await picture.blob());
  image.alt = `drift figures of ${reports.length} windows against their thresholds`;
  const shown = reports.slice(-DRIFT_ROWS).reverse();
  const methods = [...new Set(shown.flatMap((r) => r.results.map((m) => m.method)))];
  const table = $("drift-table");
  table.tHead.replaceChildren(el("tr", {}, ...["window", "time", "version", "drift", ...methods]
    .map((name) => el("th", {}, name))));
  table.tBodies[0].replaceChildren(...shown.map((r) => {
    const by = Object.fromEntries(r.results.map((m) => [m.method, m]));
    const figures = methods.map((name) => (by[name]
      ? el("td", { class: by[name].crossed ? "crossed" : "" },
        `${fixed3(by[name].score)} / ${fixed3(by[name].threshold)}`)
      : el("td", {}, "–")));
    const cells = [r.window, r.at.slice(0, 19).replace("T", " "), r.model_version || "–",
      r.drift ? `● ${crossed(r).join(", ")}` : ""].map((c) => el("td", {}, c));
    return el("tr", { "data-window": r.window, class: r.drift ? "worse" : "" }, ...cells, ...figures);
  }));
  return reports;
}

// ------------------------------------------------------------------ the page

let showing = 0; // the newest showTask call; an older one stops at its next step

async function showTask() {
  const mine = ++showing;
  const current = () => mine === showing;
  document.body.dataset.loaded = "";
  const list = await showVersions();
  if (!current()) return;
  const evaluated = list.models.filter((m) => m.metrics && m.metrics.evaluation);
  const newest = evaluated.length ? evaluated[evaluated.length - 1].metrics.evaluation : null;
  const metrics = settings.metrics[task] || settings.metrics.classification;
  const labels = newest ? Object.keys(newest.per_label || newest.per_type) : [];
  const keep = (id, options) => {
    const before = $(id).value;
    $(id).replaceChildren(...options.map(([value, text]) => el("option", { value }, text)));
    if (options.some(([value]) => value === before)) $(id).value = before;
  };
  keep("curve-label", [["", "(overall)"], ...labels.map((l) => [l, l])]);
  keep("curve-metric", ($("curve-label").value ? settings.label_metrics : metrics).map((m) => [m, m]));
  describeTestSet(newest);
  const curve = await showCurve();
  if (!current()) return;
  chooseVersions(curve);
  if (curve.points.length > 1) await showDelta().catch((e) => say(e.message, true));
  else clearDelta("Fewer than two versions are scored on the current test set: nothing to compare yet.");
  if (!current()) return;
  await Promise.all([showQueue(), showDrift()]);
  if (current()) document.body.dataset.loaded = task; // the tests wait for this
}

async function start() {
  try {
    settings = settings || (await (await fetch("/ui/settings")).json());
    $("tasks").replaceChildren(...settings.tasks.map((name) =>
      el("button", { type: "button", "data-task": name, class: name === task ? "current" : "",
        onclick: () => switchTask(name) }, name)));
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = !settings.auth;
    await showTask();
  } catch (error) {
    if (error instanceof Unauthorized) return showSignIn(sessionStorage.getItem(KEY) ? error.message : "");
    say(error.message, true);
  }
}

function switchTask(name) {
  task = name;
  say(""); // a promotion's message names the task it was made on
  for (const b of $("tasks").children) b.classList.toggle("current", b.dataset.task === name);
  start();
}

function guarded(action) {
  return (...args) => action(...args).catch((error) => {
    if (error instanceof Unauthorized) showSignIn(error.message);
    else say(error.message, true);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("rollback").addEventListener("click", guarded(rollback));
  $("curve-metric").addEventListener("change", guarded(() => showCurve()));
  $("curve-label").addEventListener("change", guarded(async () => {
    const metrics = $("curve-label").value ? settings.label_metrics : settings.metrics[task];
    $("curve-metric").replaceChildren(...metrics.map((m) => el("option", { value: m }, m)));
    await showCurve();
  }));
  $("delta-compare").addEventListener("click",
    guarded(() => showDelta($("delta-base").value, $("delta-head").value)));
  start();
});
