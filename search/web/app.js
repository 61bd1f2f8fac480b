// The page over search's HTTP API. State lives in the address's #fragment (q, mode, filters, or
// doc), so Back, Forward and links work; every text from the index is inserted as text, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
// The repeatable filter parameters of /search and /ask, and sentiment (one value).
const FILTER_KEYS = ["filter", "entity", "entity_label", "label", "sentiment"];
const SNIPPET = 600; // characters of a passage shown in the list

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function state() {
  return new URLSearchParams(location.hash.slice(1));
}

function go(params) {
  location.hash = params.toString();
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function request(path, params) {
  const response = await fetch(path + (params ? "?" + params.toString() : ""));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return { body, headers: response.headers };
}

async function api(path, params) {
  return (await request(path, params)).body;
}

// text with [start, end) ranges (shifted by offset) wrapped in <mark>, as a fragment of text
// nodes; tidy rewrites each piece for display (the ranges refer to the text as it is).
function marked(text, ranges, offset = 0, tidy = (piece) => piece) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of ranges) {
    const s = start - offset, e = end - offset;
    if (e <= at || s >= text.length) continue;
    out.append(tidy(text.slice(at, Math.max(s, at))), el("mark", {}, tidy(text.slice(Math.max(s, at), e))));
    at = e;
  }
  out.append(tidy(text.slice(at)));
  return out;
}

const oneBlankLine = (piece) => piece.replace(/\s*\n\s*\n\s*/g, "\n");

// About SNIPPET characters of a hit's text around its first highlighted word.
function snippet(hit) {
  const first = hit.highlights.length ? hit.highlights[0][0] : 0;
  let start = Math.max(0, first - SNIPPET / 4);
  if (start > 0) start = hit.text.indexOf(" ", start) + 1 || start;
  const end = Math.min(hit.text.length, start + SNIPPET);
  const piece = el("p", { class: "text" });
  piece.append(start > 0 ? "…" : "", marked(hit.text.slice(start, end), hit.highlights, start, oneBlankLine),
               end < hit.text.length ? "…" : "");
  return piece;
}

function documentLink(documentId, extra, text) {
  const params = state();
  params.set("doc", documentId);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return el("a", { href: "#" + params.toString(), class: "title" }, text);
}

function where(item) {
  const parts = [item.path];
  if (item.page) parts.push("page " + item.page);
  return parts.join(", ");
}

function renderHits(hits) {
  $("hits").replaceChildren(...hits.map((hit) => el("li", { class: hit.code ? "hit code" : "hit" },
    documentLink(hit.document_id, { passage: hit.passage_id },
                 hit.section ? `${hit.title} › ${hit.section}` : hit.title),
    el("div", { class: "where" }, `${where(hit)} · score ${(hit.rerank_score ?? hit.score).toFixed(3)}`),
    snippet(hit))));
}

// note: the server's word on why there is no answer (the reader does not read the language)
function renderAnswer(answers, query, note) {
  const card = $("answer");
  card.hidden = false;
  if (!answers.length) {
    card.replaceChildren(el("h2", {}, "Answer"),
      el("p", { class: "none" }, note || "No answer found with enough confidence; the passages below come closest."));
    return;
  }
  const a = answers[0];
  const sentence = el("p", { class: "sentence" },
    marked(a.sentence, [[a.sentence_offset, a.sentence_offset + a.text.length]]));
  const agree = a.sources > 1 ? ` · ${a.sources} passages agree` : "";
  card.replaceChildren(
    el("h2", {}, "Answer"), el("p", { class: "span" }, a.text), sentence,
    el("div", { class: "where" }, `confidence ${a.score.toFixed(2)}${agree} · `,
       documentLink(a.document_id, { start: a.start, end: a.end }, a.section ? `${a.title} › ${a.section}` : a.title),
       ` (${where(a)})`));
  card.dataset.query = query;
}

function apiParams(params) {
  const out = new URLSearchParams({ q: params.get("q"), mode: params.get("mode") || "hybrid" });
  for (const key of FILTER_KEYS) for (const value of params.getAll(key)) out.append(key, value);
  return out;
}

let searchId = 0;

async function runSearch(params) {
  const id = ++searchId;
  const query = params.get("q");
  $("q").value = query;
  $("mode").value = params.get("mode") || "hybrid";
  showResults();
  status("Searching…");
  const started = performance.now();
  const wanted = apiParams(params);
  const answerCard = $("answer");
  answerCard.hidden = false;
  answerCard.replaceChildren(el("h2", {}, "Answer"), el("p", { class: "none" }, "Reading the best passages…"));
  try {
    // One request at a time: the server reads one at a time, and the hits come first.
    const hits = await api("/search", new URLSearchParams([...wanted, ["k", "10"]]));
    if (id !== searchId) return;
    renderHits(hits);
    status(`${hits.length} passage${hits.length === 1 ? "" : "s"} in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    if (id !== searchId) return;
    $("hits").replaceChildren();
    answerCard.hidden = true;
    status(error.message, true);
    return;
  }
  const asked = await request("/ask", wanted).catch((error) => ({ error }));
  if (id !== searchId) return;
  if (asked.error) answerCard.hidden = true;
  else renderAnswer(asked.body, query, asked.headers.get("X-Search-Note"));
}

async function showDocument(params) {
  showResults(false);
  const wanted = new URLSearchParams();
  for (const key of ["passage", "start", "end"]) if (params.has(key)) wanted.set(key, params.get(key));
  const view = $("document");
  try {
    const doc = await api("/documents/" + encodeURIComponent(params.get("doc")), wanted);
    const back = el("a", { href: "#", onclick: (event) => { event.preventDefault(); closeDocument(); } },
                    params.has("q") ? "← Back to the results" : "← Back");
    const details = el("dl", {}, el("dt", {}, "path"), el("dd", {}, doc.path));
    for (const [key, value] of Object.entries(doc.metadata)) {
      details.append(el("dt", {}, key), el("dd", {}, typeof value === "string" ? value : JSON.stringify(value)));
    }
    const span = doc.highlight ? [[doc.highlight.start, doc.highlight.end]] : [];
    const text = el("div", { class: "text" }, marked(doc.text, span));
    view.replaceChildren(back, el("h2", {}, doc.title), details, text);
    status("");
    const mark = text.querySelector("mark");
    if (mark) mark.scrollIntoView({ block: "center" });
    back.focus({ preventScroll: true });
  } catch (error) {
    view.replaceChildren();
    status(error.message, true);
  }
}

function closeDocument() {
  const params = state();
  for (const key of ["doc", "passage", "start", "end"]) params.delete(key);
  go(params);
}

function showResults(visible = true) {
  $("results").hidden = !visible;
  $("filters").hidden = !visible || !$("filters").childElementCount;
  $("document").hidden = visible;
}

// A checkbox per facet value; checking one adds its filter to the address (and searches again).
function renderFacets(facets) {
  const groups = [];
  const group = (title, key, items, value = (item) => item.value) => {
    if (!items.length) return;
    const selected = new Set(state().getAll(key));
    const box = el("fieldset", {}, el("legend", {}, title));
    for (const item of items) {
      const input = el("input", { type: "checkbox", "data-key": key, "data-value": value(item) });
      input.checked = selected.has(value(item));
      input.addEventListener("change", () => toggleFilter(key, value(item), input.checked));
      box.append(el("label", {}, input, ` ${item.value} `, el("span", { class: "count" }, `(${item.count})`)));
    }
    groups.push(box);
  };
  for (const [field, items] of Object.entries(facets.metadata)) group(field, "filter", items, (i) => `${field}=${i.value}`);
  group("language", "filter", facets.language, (i) => `language=${i.value}`);
  for (const [task, items] of Object.entries(facets.labels)) {
    if (task === "sentiment") group("sentiment", "sentiment", items);
    else group(task, "label", items, (i) => `${task}=${i.value}`);
  }
  for (const [label, items] of Object.entries(facets.entities)) group(label, "entity", items, (i) => `${label}=${i.value}`);
  $("filters").replaceChildren(...groups);
}

function toggleFilter(key, value, on) {
  const params = state();
  const values = params.getAll(key).filter((v) => v !== value);
  params.delete(key);
  if (key === "sentiment") values.length = 0; // one sentiment at a time
  if (on) values.push(value);
  for (const v of values) params.append(key, v);
  if (params.get("q")) go(params);
  else history.replaceState(null, "", "#" + params.toString());
  syncCheckboxes();
}

function syncCheckboxes() {
  const params = state();
  for (const box of $("filters").querySelectorAll("input[type=checkbox]")) {
    box.checked = params.getAll(box.dataset.key).includes(box.dataset.value);
  }
}

function route() {
  const params = state();
  syncCheckboxes();
  if (params.has("doc")) showDocument(params);
  else if (params.get("q")) runSearch(params);
  else { showResults(); $("answer").hidden = true; $("hits").replaceChildren(); status(""); }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = $("q").value.trim();
  if (!query) return;
  const params = state();
  for (const key of ["doc", "passage", "start", "end"]) params.delete(key);
  params.set("q", query);
  params.set("mode", $("mode").value);
  if (params.toString() === state().toString()) runSearch(params);
  else go(params);
});

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing) { event.preventDefault(); $("q").focus(); $("q").select(); }
  else if (event.key === "Escape" && state().has("doc")) closeDocument();
});

window.addEventListener("hashchange", route);

(async () => {
  try {
    const stats = await api("/stats");
    $("index-info").textContent = `${stats.documents} documents, ${stats.passages} passages · ${stats.model}`;
    renderFacets(await api("/facets"));
  } catch (error) {
    status(error.message, true);
  }
  route();
})();
