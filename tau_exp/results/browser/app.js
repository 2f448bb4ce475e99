"use strict";
// The sweep browser's script. Views, one per route of the URL's hash:
//   #/                              the sweep table (sortable; pick configurations to compare)
//   #/config/C?outcome=&term=&failure=&q=  one configuration's tasks, filtered
//   #/config/C/task/T/N             one task, trial N: why it failed, reward breakdown, usage, conversation
//   #/compare/C1,C2?differ=1&q=     tasks of several configurations, side by side
//   #/compare/C1,C2/task/T?trial=N  one task side by side across those configurations
// Full records live in per-job gzip+base64 blocks at the end of the page, decompressed on first
// use. Text from the records always goes into the page as text, never as HTML.

const INDEX = JSON.parse(document.getElementById("index").textContent);
const CONFIGS = INDEX.configs;
const EPISODES_BY_CONFIG = CONFIGS.map(() => []);
for (const entry of INDEX.episodes) EPISODES_BY_CONFIG[entry.config].push(entry);
const ROWS_PER_PAGE = 300;
const OUTCOMES = ["success", "failure", "infra_error", "harness_error"];

// ---------------------------------------------------------------- small helpers

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const fmt = (value, digits = 3) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
const fmtInt = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US"));
const configLink = (id) => `#/config/${id}`;
const taskLink = (entry) => `#/config/${entry.config}/task/${encodeURIComponent(entry.task)}/${entry.trial}`;
const compareLink = (ids, task) => `#/compare/${ids.join(",")}` + (task === undefined ? "" : `/task/${encodeURIComponent(task)}`);

function outcome(entry) {
  if (entry.status !== "scored") return entry.status;
  return entry.success ? "success" : "failure";
}

function badge(kind, text) {
  return h("span", { className: `badge ${kind}` }, text ?? kind.replace("_", " "));
}

function envOf(configId) {
  return CONFIGS[configId].row.env;
}

function naturalCompare(a, b) {
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

// ---------------------------------------------------------------- job blocks, loaded lazily

const pageParsed = new Promise((resolve) =>
  document.readyState === "loading" ? document.addEventListener("DOMContentLoaded", resolve) : resolve());
const blocks = new Map(); // block number -> Promise of its records; the most recently used last
const MAX_BLOCKS = 24; // jobs kept decompressed (a job of 100 real tasks is a few MB of objects)

function loadBlock(number) {
  let block = blocks.get(number);
  if (block) {
    blocks.delete(number); // re-inserted below: most recently used
  } else {
    block = pageParsed.then(async () => {
      const text = document.getElementById(`block-${number}`).textContent;
      const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return JSON.parse(await new Response(stream).text());
    });
  }
  blocks.set(number, block);
  for (const oldest of blocks.keys()) {
    if (blocks.size <= MAX_BLOCKS) break;
    blocks.delete(oldest);
    searchTexts.delete(oldest);
  }
  return block;
}

async function details(entry) {
  return (await loadBlock(entry.block))[entry.position];
}

// ---------------------------------------------------------------- routing

function parseRoute() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

function setParams(params) {
  // Filters live in the URL (shareable, kept by Back) without re-rendering the whole view.
  const [path] = location.hash.split("?");
  const query = params.toString();
  history.replaceState(null, "", query ? `${path}?${query}` : path);
}

let renderCount = 0;

async function render() {
  const view = document.getElementById("view");
  const current = ++renderCount;
  let content, parts = [];
  try {
    const route = parseRoute(); // a malformed address (a stray %) is reported like any other
    parts = route.parts;
    const params = route.params;
    if (parts[0] === "config" && parts[2] === "task") content = await taskView(+parts[1], parts[3], +(parts[4] ?? 0));
    else if (parts[0] === "config") content = configView(+parts[1], params);
    else if (parts[0] === "compare" && parts[2] === "task") content = await sideBySideView(ids(parts[1]), parts[3], params);
    else if (parts[0] === "compare") content = compareView(ids(parts[1]), params);
    else content = sweepView(params);
  } catch (error) {
    console.error(error);
    content = h("p", { className: "error" }, `Cannot show ${location.hash}: ${error.message}`);
  }
  if (current !== renderCount) return; // a later navigation won
  view.replaceChildren(content);
  document.body.dataset.view = parts[0] ? `${parts[0]}${parts[2] ? "-task" : ""}` : "sweep";
  window.scrollTo(0, 0);
}

function ids(text) {
  const list = (text || "").split(",").map(Number).filter((id) => Number.isInteger(id) && CONFIGS[id]);
  if (list.length === 0) throw new Error("no such configuration");
  return list;
}

function crumbs(...items) {
  document.getElementById("crumbs").replaceChildren(
    ...[["Sweep", "#/"], ...items].flatMap(([text, href], i, all) => [
      ...(i ? [h("span", { className: "sep" }, "›")] : []),
      i === all.length - 1 || !href ? h("span", {}, text) : h("a", { href }, text)]));
}

// ---------------------------------------------------------------- view: the sweep table

const selected = new Set(); // configurations picked for comparison

function sweepView(params) {
  crumbs();
  const maxK = Math.max(0, ...CONFIGS.flatMap((c) => Object.keys(c.row.pass_hat_k).map(Number)));
  const ks = Array.from({ length: maxK }, (_, i) => i + 1);
  const columns = [
    ["label", "configuration", (c) => c.label],
    ["avg_reward", "avg reward", (c) => c.row.avg_reward],
    ["ci", "95% interval", (c) => c.row.ci_low],
    ...ks.map((k) => [`pass${k}`, `pass^${k}`, (c) => c.row.pass_hat_k[k]]),
    ["tasks", "tasks", (c) => c.row.tasks],
    ["results", "scored", (c) => c.row.results],
    ["infra", "infra errors", (c) => c.row.infra_errors],
    ["harness", "harness errors", (c) => c.row.harness_errors],
    ["tokens", "tokens", (c) => c.row.prompt_tokens + c.row.completion_tokens],
    ["time", "wall time", (c) => c.row.wall_time_s],
    ["jobs", "jobs", (c) => c.row.jobs],
  ];
  const sortKey = params.get("sort") || "label";
  const descending = params.get("dir") === "desc";
  const [, , sortValue] = columns.find(([key]) => key === sortKey) || columns[0];
  const rows = [...CONFIGS].sort((a, b) => {
    const [x, y] = [sortValue(a), sortValue(b)];
    const missing = (v) => v === null || v === undefined;
    if (missing(x) || missing(y)) return missing(x) - missing(y); // no value: last, either way
    const order = typeof x === "number" ? x - y : naturalCompare(x, y);
    return descending ? -order : order;
  });
  const filter = h("input", { type: "search", id: "config-filter", placeholder: "filter configurations (e.g. airline react)",
                              value: params.get("q") || "", oninput: () => { params.set("q", filter.value); setParams(params); showRows(); } });
  const compareButton = h("a", { id: "compare-selected", className: "button" });
  const updateCompare = () => {
    const chosen = [...selected].sort((a, b) => a - b);
    compareButton.textContent = `Compare selected (${chosen.length})`;
    compareButton.classList.toggle("disabled", chosen.length < 2);
    compareButton.href = chosen.length >= 2 ? compareLink(chosen) : "javascript:void 0";
  };
  const header = h("tr", {}, h("th", {}, ""), columns.map(([key, title]) => {
    const sorted = key === sortKey;
    return h("th", { className: "sortable", "data-key": key, "aria-sort": sorted ? (descending ? "descending" : "ascending") : "none",
                     onclick: () => { params.set("sort", key); params.set("dir", sorted && !descending ? "desc" : "asc"); location.hash = `#/?${params}`; } },
             title, sorted ? (descending ? " ▼" : " ▲") : "");
  }));
  const body = h("tbody");
  const showRows = () => {
    const words = (params.get("q") || "").toLowerCase().split(/\s+/).filter(Boolean);
    body.replaceChildren(...rows.filter((c) => words.every((w) => c.label.toLowerCase().includes(w))).map((c) => h("tr", { "data-config": c.id },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `select ${c.label}`, checked: selected.has(c.id),
                                onchange: (event) => { event.target.checked ? selected.add(c.id) : selected.delete(c.id); updateCompare(); } })),
      h("td", {}, h("a", { href: configLink(c.id) }, c.label)),
      h("td", { className: "num" }, fmt(c.row.avg_reward)),
      h("td", { className: "num muted" }, c.row.ci_low === null ? "—" : `${fmt(c.row.ci_low, 2)}–${fmt(c.row.ci_high, 2)}`),
      ks.map((k) => h("td", { className: "num" }, fmt(c.row.pass_hat_k[k]))),
      h("td", { className: "num" }, c.row.tasks),
      h("td", { className: "num" }, c.row.results),
      h("td", { className: c.row.infra_errors ? "num warn" : "num" }, c.row.infra_errors),
      h("td", { className: c.row.harness_errors ? "num warn" : "num" }, c.row.harness_errors),
      h("td", { className: "num" }, fmtInt(c.row.prompt_tokens + c.row.completion_tokens)),
      h("td", { className: "num" }, `${Math.round(c.row.wall_time_s)} s`),
      h("td", { className: "num" }, c.row.jobs))));
  };
  showRows();
  updateCompare();
  const episodes = INDEX.episodes.length;
  return h("section", {},
    h("h1", {}, "Sweep"),
    h("p", { className: "muted" }, `${CONFIGS.length} configurations · ${fmtInt(episodes)} episodes · from ${INDEX.paths.join(", ")} · generated ${INDEX.generated_at}`),
    h("div", { className: "toolbar" }, filter, compareButton,
      h("span", { className: "muted" }, "Tick two or more configurations to compare them task by task.")),
    h("table", { id: "sweep-table" }, h("thead", {}, header), body));
}

// ---------------------------------------------------------------- view: one configuration's tasks

const searchTexts = new Map(); // block number -> Promise of each record's lower-cased text

function recordText(record) {
  return (record.messages || []).map((m) => `${asText(m.content)} ${JSON.stringify(m.tool_calls || "")}`).join("\n").toLowerCase();
}

function blockTexts(number) {
  if (!searchTexts.has(number)) searchTexts.set(number, loadBlock(number).then((records) => records.map(recordText)));
  return searchTexts.get(number);
}

// Does the entry match the search? Task ids match at once; the text (the task's instructions and
// the conversation) once its job's block is loaded. (A query that is a task id is that task: the
// caller filters those before calling.)
async function matches(entry, query) {
  if (!query) return true;
  if (entry.task.toLowerCase().includes(query)) return true;
  const instructions = INDEX.tasks[envOf(entry.config)]?.[entry.task] || "";
  if (instructions.toLowerCase().includes(query)) return true;
  return (await blockTexts(entry.block))[entry.position].includes(query);
}

function filterBar(params, onChange, terminations, failures) {
  const select = (name, label, options) => h("label", {}, `${label} `, h("select", {
    name, onchange: (event) => { event.target.value ? params.set(name, event.target.value) : params.delete(name); onChange(); } },
    options.map(([value, text]) => h("option", { value, selected: (params.get(name) || "") === value }, text))));
  const search = h("input", { type: "search", name: "q", placeholder: "task id, or words of the conversation", value: params.get("q") || "",
                              oninput: () => { search.value ? params.set("q", search.value) : params.delete("q"); onChange(); } });
  return h("div", { className: "toolbar" },
    select("outcome", "Outcome", [["", "all"], ...OUTCOMES.map((o) => [o, o.replace("_", " ")])]),
    terminations && select("term", "Termination", [["", "all"], ...terminations.map((t) => [t, t])]),
    failures && failures.length ? select("failure", "Failure", [["", "all"], ...failures.map((f) => [f, f.replaceAll("_", " ")])]) : null,
    search);
}

function configView(id, params) {
  const config = CONFIGS[id];
  if (!config) throw new Error("no such configuration");
  crumbs([config.label, null]);
  const entries = [...EPISODES_BY_CONFIG[id]].sort((a, b) => naturalCompare(a.task, b.task) || a.trial - b.trial);
  const terminations = [...new Set(entries.map((e) => e.termination).filter(Boolean))].sort();
  const failures = [...new Set(entries.map((e) => e.failure).filter(Boolean))].sort();
  const body = h("tbody");
  const status = h("p", { id: "list-status", className: "muted" });
  let shown = ROWS_PER_PAGE;
  let filtering = 0;
  const more = h("button", { onclick: () => { shown += ROWS_PER_PAGE; update(); } }, "Show more");
  const update = async () => {
    setParams(params);
    const current = ++filtering;
    const wanted = params.get("outcome"), term = params.get("term"), failure = params.get("failure");
    const query = (params.get("q") || "").toLowerCase().trim();
    let rows = entries.filter((e) => (!wanted || outcome(e) === wanted) && (!term || e.termination === term)
      && (!failure || e.failure === failure));
    if (query && rows.some((e) => e.task.toLowerCase() === query)) {
      rows = rows.filter((e) => e.task.toLowerCase() === query); // "37" means task 37, not every "37" in the text
    } else if (query) {
      status.textContent = "Searching conversations…";
      const keep = await Promise.all(rows.map((e) => matches(e, query)));
      rows = rows.filter((_, i) => keep[i]);
    }
    if (current !== filtering) return; // typed on: a newer search runs
    status.textContent = `${rows.length} of ${entries.length} (task, trial) pairs`;
    body.replaceChildren(...rows.slice(0, shown).map((e) => h("tr", { "data-task": e.task, "data-trial": e.trial },
      h("td", {}, h("a", { href: taskLink(e) }, `task ${e.task}`)),
      h("td", { className: "num" }, e.trial),
      h("td", { className: "num" }, fmt(e.reward)),
      h("td", {}, badge(outcome(e))),
      h("td", {}, e.termination || "—"),
      h("td", {}, e.failure ? e.failure.replaceAll("_", " ") : "—"),
      h("td", { className: "num" }, e.turns),
      h("td", { className: "num" }, fmtInt(e.tokens)),
      h("td", { className: "num" }, `${fmt(e.duration_s, 1)} s`))));
    more.hidden = rows.length <= shown;
  };
  update();
  const others = CONFIGS.filter((c) => c.id !== id && c.row.env === config.row.env).map((c) => c.id);
  return h("section", {},
    h("h1", {}, config.label),
    summaryLine(config),
    others.length ? h("p", {}, h("a", { href: compareLink([id, ...others]) }, `Compare with the other ${others.length} configuration(s) of ${config.row.env}`)) : null,
    filterBar(params, () => { shown = ROWS_PER_PAGE; update(); }, terminations, failures),
    status,
    h("table", { id: "task-table" },
      h("thead", {}, h("tr", {}, ["task", "trial", "reward", "outcome", "termination", "failure", "turns", "tokens", "duration"].map((t) => h("th", {}, t)))),
      body),
    more);
}

function summaryLine(config) {
  const row = config.row;
  const passes = Object.entries(row.pass_hat_k).map(([k, v]) => `pass^${k} ${fmt(v)}`).join(" · ");
  return h("p", { className: "summary" },
    `avg reward ${fmt(row.avg_reward)}`, row.ci_low === null ? "" : ` (95%: ${fmt(row.ci_low, 2)}–${fmt(row.ci_high, 2)})`,
    passes ? ` · ${passes}` : "", ` · ${row.results} scored of ${row.tasks} tasks · ${row.infra_errors} infra errors · ${row.harness_errors} harness errors`);
}

// ---------------------------------------------------------------- view: one task

async function taskView(configId, task, trial) {
  const config = CONFIGS[configId];
  if (!config) throw new Error("no such configuration");
  const trials = EPISODES_BY_CONFIG[configId].filter((e) => e.task === task).sort((a, b) => a.trial - b.trial);
  const entry = trials.find((e) => e.trial === trial);
  if (!entry) throw new Error(`no task ${task}, trial ${trial} in ${config.label}`);
  crumbs([config.label, configLink(configId)], [`task ${task} · trial ${trial}`, null]);
  const record = await details(entry);
  // This configuration first, then the others of its env that ran the task.
  const peers = [configId, ...CONFIGS.filter((c) => c.id !== configId && c.row.env === config.row.env
    && EPISODES_BY_CONFIG[c.id].some((e) => e.task === task)).map((c) => c.id)];
  return h("section", {},
    h("h1", {}, `Task ${task}`, h("span", { className: "muted" }, ` · trial ${trial} · ${config.label}`)),
    h("div", { className: "toolbar" },
      trials.length > 1 ? h("span", {}, "Trials: ", trials.map((t) => t.trial === trial ? h("b", {}, ` ${t.trial} `) : h("a", { href: taskLink(t) }, ` ${t.trial} `))) : null,
      peers.length > 1 ? h("a", { className: "button", id: "side-by-side", href: compareLink(peers, task) + `?trial=${trial}` }, `Side by side across ${peers.length} configurations`) : null),
    episodeHeader(entry, record),
    diagnosisPanel(record.diagnosis),
    instructions(configId, task),
    h("div", { className: "columns" }, rewardBreakdown(record.reward_info), usageTable(entry, record)),
    endedBy(record.ended_by),
    record.error ? errorBox(record.error, entry) : null,
    h("h2", {}, "Conversation"),
    conversation(record.messages, record.diagnosis));
}

function episodeHeader(entry, record) {
  return h("p", { className: "episode-header" }, badge(outcome(entry)), ` reward ${fmt(entry.reward)}`,
    ` · termination: ${entry.termination || "—"}`, ` · ${entry.turns} turns · ${fmtInt(entry.tokens)} tokens · ${fmt(entry.duration_s, 1)} s`,
    record.started_at ? ` · started ${record.started_at.replace("T", " ").slice(0, 19)} UTC` : "");
}

function instructions(configId, task, open = true) {
  const text = INDEX.tasks[envOf(configId)]?.[task];
  return text ? h("details", { className: "instructions", open }, h("summary", {}, "What the user was told (task instructions)"), h("pre", {}, text)) : null;
}

function check(ok) {
  return ok ? h("span", { className: "ok" }, "✓") : h("span", { className: "bad" }, "✗");
}

// tau2's RewardInfo: the reward, the components it is made of, and each component's checks.
function rewardBreakdown(info) {
  const box = h("div", { className: "card", id: "reward-breakdown" }, h("h2", {}, "Reward breakdown"));
  if (!info) {
    box.append(h("p", { className: "muted" }, "Not scored."));
    return box;
  }
  const basis = info.reward_basis || [];
  const counts = (component) => (basis.length === 0 || basis.includes(component) ? "" : " (not part of the reward)");
  box.append(h("p", {}, `reward ${fmt(info.reward)}`, basis.length ? ` = product of ${basis.join(", ")}` : "",
    info.reward_breakdown ? ` · ${Object.entries(info.reward_breakdown).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(" · ")}` : ""));
  if (info.db_check) {
    box.append(h("h3", {}, `Database${counts("DB")}`),
      h("p", { className: "db-check" }, check(info.db_check.db_match),
        info.db_check.db_match ? " final database matches the gold one" : " final database differs from the gold one"));
  }
  if (info.action_checks?.length) {
    box.append(h("h3", {}, `Gold actions${counts("ACTION")}`), h("ul", { className: "checks", id: "action-checks" },
      info.action_checks.map((c) => h("li", { className: c.action_match ? "met" : "missed" }, check(c.action_match),
        " ", h("code", {}, `${c.action.name}(${JSON.stringify(c.action.arguments)})`), c.action_match ? " taken" : " not taken",
        c.action.requestor === "user" ? " by the user" : ""))));
  }
  if (info.communicate_checks?.length) {
    box.append(h("h3", {}, `Information to communicate${counts("COMMUNICATE")}`), h("ul", { className: "checks", id: "communicate-checks" },
      info.communicate_checks.map((c) => h("li", { className: c.met ? "met" : "missed" }, check(c.met), ` ${c.info}`, c.met ? "" : " — missing"))));
  }
  if (info.nl_assertions?.length) {
    box.append(h("h3", {}, `Assertions${counts("NL_ASSERTION")}`), h("ul", { className: "checks" },
      info.nl_assertions.map((c) => h("li", { className: c.met ? "met" : "missed" }, check(c.met), ` ${c.nl_assertion}`,
        c.justification ? h("div", { className: "muted" }, c.justification) : null))));
  }
  if (info.env_assertions?.length) {
    // telecom: checks on the final state of the user's device ("user") or of the assistant's systems.
    box.append(h("h3", {}, `Environment assertions${counts("ENV_ASSERTION")}`), h("ul", { className: "checks", id: "env-assertions" },
      info.env_assertions.map(({ met, env_assertion: a }) => h("li", { className: met ? "met" : "missed" }, check(met), " ",
        h("code", {}, `${a.func_name}(${JSON.stringify(a.arguments)})${a.assert_value === false ? " is false" : ""}`),
        a.env_type === "user" ? " on the user's device" : " in the assistant's systems"))));
  }
  box.append(h("details", {}, h("summary", {}, "Everything the benchmark recorded"), h("pre", {}, JSON.stringify(info, null, 2))));
  return box;
}

function usageTable(entry, record) {
  const roles = Object.entries(record.usage || {});
  return h("div", { className: "card", id: "usage" }, h("h2", {}, "Tokens and timings"), h("p", { className: "muted" }, "Tokens per role (prompt, completion); model time is the time spent waiting for the model."),
    h("table", {}, h("thead", {}, h("tr", {}, ["role", "calls", "retries", "prompt", "completion", "model time"].map((t) => h("th", {}, t)))),
      h("tbody", {}, roles.map(([role, u]) => h("tr", {}, h("td", {}, role), h("td", { className: "num" }, u.calls), h("td", { className: "num" }, u.retries),
        h("td", { className: "num" }, fmtInt(u.prompt_tokens)), h("td", { className: "num" }, fmtInt(u.completion_tokens)),
        h("td", { className: "num" }, `${fmt(u.latency_s, 1)} s`))))),
    h("p", { className: "muted" }, `Episode: ${fmt(entry.duration_s, 1)} s wall time; seed ${record.seed}.`));
}

// What ended a conversation neither side stopped: the model's fault and what it sent, or the limit hit.
// Why it failed (tau_exp/results/diagnosis.py, docs/diagnosis.md): the category, the first
// decisive deviation from the gold writes with the gold action beside it, the failed checks.
function diagnosisPanel(diagnosis) {
  if (!diagnosis) return null;
  const deviation = diagnosis.deviation;
  const call = (c) => c ? `${c.name}(${c.arguments ? JSON.stringify(c.arguments) : c.detail || "unreadable arguments"})` : "—";
  const errors = Object.entries(diagnosis.tool_errors).filter(([, n]) => n).map(([kind, n]) => `${n} ${kind.replaceAll("_", " ")}`);
  const rows = [
    ["category", h("b", { className: "failure-category" }, diagnosis.category.replaceAll("_", " "))],
    ["ending", [diagnosis.ending.termination_reason || diagnosis.ending.status, diagnosis.ending.early ? ` (early: ${diagnosis.ending.early})` : ""].join("")],
    deviation ? ["first decisive deviation", h("span", {}, `${deviation.kind.replaceAll("_", " ")}`,
      deviation.turn !== null ? h("a", { href: `#message-${deviation.turn}`, onclick: (event) => { event.preventDefault(); document.querySelector(`[data-index="${deviation.turn}"]`)?.scrollIntoView(); } }, ` at message ${deviation.turn}`) : " (never made)",
      deviation.turn === null && deviation.call ? ` — ${deviation.attempts} rejected attempt(s), the last at message ${deviation.call.turn}` : "",
      deviation.call ? `: ${call(deviation.call)}` : "")] : null,
    deviation && deviation.gold ? ["gold action", h("code", { className: "gold-action" }, call(deviation.gold))] : null,
    diagnosis.failed_checks.length ? ["checks not met", diagnosis.failed_checks.join("; ")] : null,
    diagnosis.read_only_deviations ? ["read-only deviations", String(diagnosis.read_only_deviations)] : null,
    errors.length ? ["tool-use errors", errors.join(" · ")] : null,
  ].filter(Boolean);
  return h("div", { className: "card diagnosis", id: "diagnosis" }, h("h2", {}, "Why it failed"),
    h("table", {}, rows.map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, value)))),
    diagnosis.notes.length ? h("p", { className: "muted" }, diagnosis.notes.join(" ")) : null);
}

function endedBy(text) {
  return text ? h("div", { className: "card ended-by", id: "ended-by" }, h("h2", {}, "What ended the conversation"), h("pre", {}, text)) : null;
}

function errorBox(error, entry) {
  // A scored episode can carry the error that ended it (v1's agent raising on a reply it could not parse).
  const title = entry.status === "scored" ? `Ended by ${error.type}` : `Not scored: ${error.type}`;
  return h("div", { className: "card error-box" }, h("h2", {}, title), h("p", {}, error.message),
    error.traceback ? h("details", {}, h("summary", {}, "traceback"), h("pre", {}, error.traceback)) : null);
}

// ---------------------------------------------------------------- the conversation

const LONG = 1200; // characters: longer contents start folded

function asText(value) {
  return value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function prettyJSON(value) {
  if (typeof value !== "string") return asText(value);
  try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
}

function foldable(text, className) {
  if (text.length <= LONG) return h("pre", { className }, text);
  return h("details", {}, h("summary", {}, `${text.slice(0, 160).replace(/\s+/g, " ")}… (${fmtInt(text.length)} characters)`), h("pre", { className }, text));
}

function toolCall(call) {
  // tau2 records {name, arguments}; OpenAI-format traces (tau-bench v1) {function: {name, arguments}}.
  const name = call.name ?? call.function?.name;
  const args = call.arguments ?? call.function?.arguments;
  return h("div", { className: "tool-call" }, h("span", { className: "tool-name" }, `→ ${name}`), foldable(prettyJSON(args), "json"));
}

function conversation(messages, diagnosis) {
  messages = messages || [];
  // The first decisive deviation's message; for a gold write never made, its last rejected attempt.
  const decisive = diagnosis?.deviation ? diagnosis.deviation.turn ?? diagnosis.deviation.call?.turn ?? null : null;
  const gold = diagnosis?.deviation?.gold;
  const missing = diagnosis?.deviation?.turn === null;
  const callNames = new Map();
  for (const m of messages) for (const c of m.tool_calls || []) callNames.set(c.id, c.name ?? c.function?.name);
  const start = messages.find((m) => m.timestamp)?.timestamp;
  return h("ol", { className: "conversation" }, messages.map((m, i) => {
    const role = m.role === "tool" ? "tool" : m.role;
    const when = start && m.timestamp ? `+${((new Date(m.timestamp) - new Date(start)) / 1000).toFixed(1)} s` : "";
    const tokens = m.usage ? `${fmtInt(m.usage.prompt_tokens)} in / ${fmtInt(m.usage.completion_tokens)} out` : "";
    // In dual-control domains (telecom) the user calls tools on their own device: those results are the user's.
    const byUser = role === "tool" && m.requestor === "user";
    const title = role === "tool" ? `${byUser ? "user's " : ""}tool result${callNames.get(m.id) || m.name ? ` · ${callNames.get(m.id) || m.name}` : ""}${m.error ? " · error" : ""}` : role;
    return h("li", { className: `message ${role}${byUser ? " by-user" : ""}${m.error ? " tool-error" : ""}${i === decisive ? " decisive" : ""}`, "data-index": i },
      h("div", { className: "message-head" }, h("span", { className: "role" }, title), h("span", { className: "muted" }, [when, tokens].filter(Boolean).join(" · "))),
      i === decisive ? h("p", { className: "decisive-note" }, missing
        ? "First decisive deviation: a gold write never made (this was its last, rejected, attempt)"
        : "First decisive deviation from the gold actions",
        gold ? [" · gold: ", h("code", {}, `${gold.name}(${JSON.stringify(gold.arguments)})`)] : "") : null,
      m.content ? foldable(role === "tool" ? prettyJSON(m.content) : asText(m.content), role === "tool" ? "json" : "text") : null,
      (m.tool_calls || []).map(toolCall));
  }));
}

// ---------------------------------------------------------------- view: configurations compared task by task

function successRate(entries) {
  const scored = entries.filter((e) => e.status === "scored");
  return scored.length ? scored.filter((e) => e.success).length / scored.length : null;
}

function compareView(configIds, params) {
  crumbs([`${configIds.length} configurations compared`, null]);
  // A row is a task of one env: retail task 5 and airline task 5 are different tasks.
  const envs = [...new Set(configIds.map(envOf))].sort();
  const rows = envs.flatMap((env) => {
    const sameEnv = configIds.filter((id) => envOf(id) === env);
    const tasks = [...new Set(sameEnv.flatMap((id) => EPISODES_BY_CONFIG[id].map((e) => e.task)))].sort(naturalCompare);
    return tasks.map((task) => {
      const cells = configIds.map((id) => (envOf(id) === env
        ? EPISODES_BY_CONFIG[id].filter((e) => e.task === task).sort((a, b) => a.trial - b.trial) : null));
      const rates = cells.filter(Boolean).map(successRate).filter((r) => r !== null);
      return { env, task, sameEnv, cells, differ: new Set(rates).size > 1 };
    });
  });
  let limit = ROWS_PER_PAGE;
  const more = h("button", { onclick: () => { limit += ROWS_PER_PAGE; update(); } }, "Show more");
  const body = h("tbody");
  const status = h("p", { id: "list-status", className: "muted" });
  const differ = h("input", { type: "checkbox", id: "only-differ", checked: params.get("differ") === "1",
                              onchange: () => { differ.checked ? params.set("differ", "1") : params.delete("differ"); limit = ROWS_PER_PAGE; update(); } });
  const search = h("input", { type: "search", name: "q", placeholder: "search task ids", value: params.get("q") || "",
                              oninput: () => { search.value ? params.set("q", search.value) : params.delete("q"); limit = ROWS_PER_PAGE; update(); } });
  const update = () => {
    setParams(params);
    const query = (params.get("q") || "").toLowerCase().trim();
    const shown = rows.filter((r) => (!differ.checked || r.differ) && (!query || r.task.toLowerCase().includes(query)));
    status.textContent = `${shown.length} of ${rows.length} tasks · ${rows.filter((r) => r.differ).length} where the configurations disagree`;
    body.replaceChildren(...shown.slice(0, limit).map((r) => h("tr", { "data-task": r.task, "data-env": r.env, className: r.differ ? "differ" : "" },
      h("td", {}, h("a", { href: compareLink(r.sameEnv, r.task) }, `task ${r.task}`, envs.length > 1 ? ` · ${r.env}` : "")),
      r.cells.map((cell) => h("td", {}, cell === null ? h("span", { className: "muted" }, "other env")
        : cell.length ? cell.map((e) => h("a", { href: taskLink(e), title: `trial ${e.trial}: ${outcome(e)}` }, badge(outcome(e), symbol(e))))
        : h("span", { className: "muted" }, "not run"))),
      h("td", {}, r.differ ? badge("differ", "disagree") : ""))));
    more.hidden = shown.length <= limit;
  };
  update();
  return h("section", {},
    h("h1", {}, "Task by task"),
    h("ol", { className: "legend" }, configIds.map((id) => h("li", {}, h("a", { href: configLink(id) }, CONFIGS[id].label), " ", summaryLine(CONFIGS[id])))),
    verdicts(configIds),
    h("div", { className: "toolbar" }, h("label", {}, differ, " only tasks where they disagree"), search),
    status,
    h("table", { id: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "task"), configIds.map((id, i) => h("th", { title: CONFIGS[id].label }, `#${i + 1} ${differences(configIds)[i]}`)), h("th", {}, "agree?"))),
      body),
    more);
}

// Better, worse or noise: the paired comparisons of average reward between the compared
// configurations (computed by tau_exp/results/inference.py when the page was written), with the tasks
// each solves more often, linked side by side.
function verdicts(configIds) {
  const chosen = new Set(configIds);
  const found = (INDEX.comparisons || []).filter((d) => chosen.has(d.a) && chosen.has(d.b));
  if (!found.length) return null;
  const flips = (d, tasks) => tasks.length
    ? tasks.map((task) => h("a", { href: compareLink([d.a, d.b], task) }, ` ${task} `)) : " none";
  return h("ul", { id: "verdicts", className: "verdicts" }, found.map((d) => h("li", {},
    h("b", {}, d.verdict === "no detectable difference" ? "No detectable difference" : `${CONFIGS[d.difference > 0 ? d.b : d.a].label} is better`),
    ` — average reward #${configIds.indexOf(d.b) + 1} − #${configIds.indexOf(d.a) + 1}: ${d.difference >= 0 ? "+" : ""}${fmt(d.difference, 3)} `,
    `(95% ${fmt(d.low, 3)} to ${fmt(d.high, 3)}; p = ${fmt(d.p_adjusted, 3)}, Holm; ${d.tasks} tasks`,
    d.mde === null ? ")" : `; smallest difference detectable with 80% power: ${fmt(d.mde, 3)})`,
    // Whether both ran the same benchmark data (configurations.same_data), as the report says it.
    h("span", { className: d.same_data === false ? "data-differs" : "muted" }, ` · task data: ${
      d.same_data === true ? "same" : d.same_data === false ? "DIFFERENT (not like for like)" : "unknown"}`),
    h("br"), `#${configIds.indexOf(d.a) + 1} solves more often:`, flips(d, d.a_more),
    " · ", `#${configIds.indexOf(d.b) + 1} solves more often:`, flips(d, d.b_more))));
}

// What sets each compared configuration apart (e.g. only the model), for the column headers.
function differences(configIds) {
  const fields = ["env", "agent", "model", "user", "user_strategy"];
  const varying = fields.filter((f) => new Set(configIds.map((id) => CONFIGS[id].row[f])).size > 1);
  return configIds.map((id) => (varying.length ? varying : fields).map((f) => String(CONFIGS[id].row[f]).split("/").pop()).join(" · "));
}

function symbol(entry) {
  return { success: "✓", failure: "✗", infra_error: "!", harness_error: "!" }[outcome(entry)];
}

// ---------------------------------------------------------------- view: one task side by side

const MAX_SIDE = 6; // columns side by side: each opens its job's records

async function sideBySideView(compared, task, params) {
  const trial = +(params.get("trial") ?? 0);
  crumbs([`${compared.length} configurations compared`, compareLink(compared)], [`task ${task} · trial ${trial}`, null]);
  // One env (task ids mean different tasks in different envs), at most MAX_SIDE columns.
  const env = envOf(compared.find((id) => EPISODES_BY_CONFIG[id].some((e) => e.task === task)) ?? compared[0]);
  const sameEnv = compared.filter((id) => envOf(id) === env);
  const configIds = sameEnv.slice(0, MAX_SIDE);
  const entries = configIds.map((id) => EPISODES_BY_CONFIG[id].find((e) => e.task === task && e.trial === trial));
  const records = await Promise.all(entries.map((e) => (e ? details(e) : null)));
  const trials = [...new Set(configIds.flatMap((id) => EPISODES_BY_CONFIG[id].filter((e) => e.task === task).map((e) => e.trial)))].sort((a, b) => a - b);
  return h("section", {},
    h("h1", {}, `Task ${task}`, h("span", { className: "muted" }, ` · trial ${trial} · side by side`)),
    trials.length > 1 ? h("p", {}, "Trials: ", trials.map((t) => t === trial ? h("b", {}, ` ${t} `) : h("a", { href: `${compareLink(configIds, task)}?trial=${t}` }, ` ${t} `))) : null,
    sameEnv.length > configIds.length ? h("p", { className: "muted" }, `Showing ${configIds.length} of ${sameEnv.length} configurations of ${env}: `
      + "tick the ones to see in the sweep table and compare those.") : null,
    instructions(configIds[0], task, false),
    h("div", { className: "side-by-side", style: `grid-template-columns: repeat(${configIds.length}, minmax(380px, 1fr))` },
      configIds.map((id, i) => h("div", { className: "side", "data-config": id },
        h("h2", {}, h("a", { href: entries[i] ? taskLink(entries[i]) : configLink(id) }, CONFIGS[id].label)),
        entries[i] ? [episodeHeader(entries[i], records[i]), diagnosisPanel(records[i].diagnosis), rewardBreakdown(records[i].reward_info),
                      records[i].error ? errorBox(records[i].error) : null, conversation(records[i].messages, records[i].diagnosis)]
                   : h("p", { className: "muted" }, `trial ${trial} of task ${task} was not run in this configuration`)))));
}

// ---------------------------------------------------------------- start

document.getElementById("generated").textContent = `${INDEX.paths.length === 1 ? INDEX.paths[0] : `${INDEX.paths.length} sweeps`}`;
window.addEventListener("hashchange", render);
render();
