"""The preview's pages and their scripts: the live page (the MJPEG stream, the live state by server-sent events, or
polling where EventSource is missing, the last label events with their snapshots, the model's contract and source,
and the "Reload model" button)
and, with --collect, the review view (the inbox's frames, a button and a key per class, none, delete and undo).

Everything from outside (labels from the model file, the source, events) reaches the page as escaped HTML or
through textContent, never as markup."""

from __future__ import annotations

from html import escape
from typing import Any

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>catdog camera</title>
<style>
body {{ margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; }}
main {{ display: flex; flex-wrap: wrap; gap: 16px; padding: 12px; }}
#stream {{ display: block; max-width: 100%; background: #000; min-width: 320px; min-height: 240px; }}
aside {{ flex: 1; min-width: 260px; }}
#label {{ font-size: 44px; margin: 0; }}
dl {{ display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 8px 0; }}
dt {{ color: #999; }} dd {{ margin: 0; }}
h2 {{ font-size: 15px; color: #999; margin: 16px 0 4px; }}
ol {{ list-style: none; padding: 0; margin: 0; }}
li {{ display: flex; gap: 8px; align-items: center; margin: 4px 0; }}
li img {{ height: 48px; }}
button {{ font: inherit; padding: 4px 12px; }}
</style>
</head>
<body data-label="">
<main>
<section><img id="stream" src="stream.mjpg" alt="live camera stream"></section>
<aside>
<h1 id="label">-</h1>
<dl>
<dt>confidence</dt><dd id="confidence">-</dd>
<dt>since</dt><dd id="since">-</dd>
<dt>fps</dt><dd id="fps">-</dd>
<dt>frames</dt><dd id="frames">-</dd>
<dt>dropped</dt><dd id="dropped">-</dd>
<dt>latency</dt><dd id="latency">-</dd>
</dl>
<h2>Last label events</h2>
<ol id="events" data-keep="{keep}"></ol>
<h2>Model</h2>
<dl>
<dt>labels</dt><dd id="model-labels">{labels}</dd>
<dt>input</dt><dd>{input}</dd>
<dt>crop</dt><dd>{crop}</dd>
<dt>file</dt><dd id="model-file">{model}</dd>
<dt>loaded</dt><dd id="model-since">-</dd>
</dl>
{reload}<h2>Source</h2>
<p id="source">{source}</p>
{review}</aside>
</main>
<script src="preview.js"></script>
</body>
</html>
"""

SCRIPT = """"use strict";
const $ = (id) => document.getElementById(id);
const list = $("events");
const keep = Number(list.dataset.keep) || 20;
let lastEvent = 0;

function clock(seconds) {
  return seconds == null ? "-" : new Date(seconds * 1000).toLocaleTimeString();
}

function showState(s) {
  $("label").textContent = s.label == null ? "-" : s.label;
  document.body.dataset.label = s.label == null ? "" : s.label;
  $("confidence").textContent = s.confidence == null ? "-" : s.confidence.toFixed(2);
  $("since").textContent = clock(s.since);
  $("fps").textContent = s.fps == null ? "-" : s.fps.toFixed(1);
  $("frames").textContent = String(s.frames);
  $("dropped").textContent = String(s.dropped);
  $("latency").textContent = s.latency_ms == null ? "-" : s.latency_ms.toFixed(1) + " ms";
  if (s.model) {
    $("model-file").textContent = s.model.file;
    $("model-labels").textContent = s.model.labels.join(", ");
    $("model-since").textContent = clock(s.model.since);
  }
}

const reload = $("reload");
if (reload) {
  reload.addEventListener("click", () => {
    reload.disabled = true;
    $("reload-result").textContent = "loading the model file...";
    fetch("api/model/reload", {method: "POST", headers: {"X-Catdog-Action": "reload"}, credentials: "same-origin"})
      .then((r) => r.headers.get("Content-Type") === "application/json" ? r.json()
                                                                        : r.text().then((t) => ({message: t.trim()})))
      .then((d) => { $("reload-result").textContent = d.message; })
      .catch((error) => { $("reload-result").textContent = error.message; })
      .finally(() => { reload.disabled = false; });
  });
}

function addEvent(e) {
  if (e.id <= lastEvent) return;
  lastEvent = e.id;
  const item = document.createElement("li");
  if (e.snapshot) {
    const img = document.createElement("img");
    img.src = e.snapshot;
    img.alt = "snapshot of event " + e.id;
    item.append(img);
  }
  const text = document.createElement("span");
  text.textContent = clock(e.time) + "  " + e.label + " " + (e.confidence == null ? "" : e.confidence.toFixed(2));
  item.append(text);
  list.prepend(item);
  while (list.children.length > keep) list.lastElementChild.remove();
}

function poll() {
  fetch("api/state").then((r) => r.json()).then(showState).catch(() => {});
  fetch("api/events?after=" + lastEvent).then((r) => r.json())
    .then((d) => d.events.forEach(addEvent)).catch(() => {});
}

if (window.EventSource) {
  const live = new EventSource("api/live");
  live.addEventListener("state", (m) => showState(JSON.parse(m.data)));
  live.addEventListener("label", (m) => addEvent(JSON.parse(m.data)));
} else {
  poll();
  setInterval(poll, 1000);
}

const stream = $("stream");
stream.addEventListener("error", () => {
  setTimeout(() => { stream.src = "stream.mjpg?" + Date.now(); }, 2000);
});
"""


#: The reload action (edge.camera.swap): a button, and the answer of its POST in a status line.
RELOAD = ('<p><button type="button" id="reload">Reload model</button></p>\n'
          '<p id="reload-result" role="status"></p>\n')


def render_page(info: dict[str, Any], events_kept: int, review: bool = False, reload: bool = False) -> bytes:
    """The page as UTF-8 bytes, with the model's contract and the source filled in (escaped); review: link the
    review view (frames are collected); reload: offer the "Reload model" button (the model file is read again)."""
    height, width = info.get("input_hw", ("?", "?"))
    return PAGE.format(
        keep=int(events_kept),
        reload=RELOAD if reload else "",
        review='<h2>Collected frames</h2>\n<p><a id="review" href="review">Label them</a></p>\n' if review else "",
        labels=escape(", ".join(str(label) for label in info.get("labels", ()))),
        input=escape(f"{height}x{width} {info.get('color', '')}, resize {info.get('resize', '')}"),
        crop=escape("the whole frame" if info.get("crop", 1) == 1 else f"the centre {info.get('crop')} of each side"),
        model=escape(str(info.get("model", ""))),
        source=escape(str(info.get("source", ""))),
    ).encode("utf-8")


#: The review view: everything on it comes from /api/review as JSON and reaches the page through textContent.
REVIEW_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>catdog review</title>
<style>
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; }
a { color: #8cf; }
header, main { display: flex; flex-wrap: wrap; gap: 16px; padding: 8px 12px; align-items: flex-start; }
header { align-items: baseline; }
h1 { font-size: 20px; margin: 0; }
#frame { display: block; width: 480px; max-width: 100%; background: #000; min-height: 120px; }
aside { flex: 1; min-width: 260px; }
button { font: inherit; margin: 2px; padding: 6px 12px; background: #333; color: #eee; border: 1px solid #666;
  border-radius: 4px; cursor: pointer; }
button:disabled { opacity: 0.4; cursor: default; }
#classes button { background: #264; }
#delete { background: #622; }
kbd { color: #fd8; font-family: inherit; }
input { font: inherit; padding: 5px; width: 12em; }
#about, #message { color: #bbb; min-height: 1.4em; }
#inbox { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px; margin: 0; }
#inbox button { padding: 0; border: 3px solid transparent; background: none; }
#inbox button[aria-current="true"] { border-color: #fd8; }
#inbox img { display: block; height: 72px; }
</style>
</head>
<body data-count="">
<header><a href="/">live view</a><h1>Inbox: <span id="count">-</span> frame(s) to label</h1></header>
<main>
<section><img id="frame" alt="the frame to label"><p id="about"></p></section>
<aside>
<div id="classes"></div>
<div><button type="button" id="none"><kbd>n</kbd> none</button>
<button type="button" id="delete"><kbd>d</kbd> delete</button>
<button type="button" id="undo"><kbd>u</kbd> undo</button></div>
<form id="add"><input id="new-class" maxlength="64" placeholder="new class" aria-label="new class name">
<button type="submit">add class</button></form>
<p id="message" role="status"></p>
<p id="retrain-box" hidden><button type="button" id="retrain">Retrain</button>
<span id="retrain-status" role="status"></span></p>
</aside>
</main>
<ol id="inbox"></ol>
<script src="review.js"></script>
</body>
</html>
"""

REVIEW_SCRIPT = """"use strict";
const $ = (id) => document.getElementById(id);
let state = {frames: [], classes: [], none: "none", undo: null, count: 0};
let current = null;
let queue = Promise.resolve();

function kbd(text) {
  const k = document.createElement("kbd");
  k.textContent = text;
  return k;
}

function select(name) {
  current = name;
  const frame = state.frames.find((f) => f.name === name);
  $("frame").src = frame ? "inbox/" + encodeURIComponent(name) : "";
  $("frame").alt = frame ? name : "the inbox is empty";
  let about = "";
  if (frame) {
    about = name + ": the model said " + frame.label;
    if (frame.confidence != null) about += " " + frame.confidence.toFixed(2);
    if (frame.kept) about += ", kept as " + frame.kept;
  }
  $("about").textContent = about;
  for (const b of $("inbox").querySelectorAll("button")) b.setAttribute("aria-current", String(b.dataset.name === name));
}

function show(s, prefer) {
  const names = s.frames.map((f) => f.name);
  const was = state.frames.findIndex((f) => f.name === current);
  state = s;
  $("count").textContent = String(s.count);
  document.body.dataset.count = String(s.count);
  const box = $("classes");
  box.replaceChildren();
  s.classes.forEach((c, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.class = c;
    if (i < 9) b.append(kbd(String(i + 1)), " ");
    b.append(c);
    b.addEventListener("click", () => label(c));
    box.append(b);
  });
  $("none").replaceChildren(kbd("n"), " " + s.none);
  $("undo").disabled = !s.undo;
  const list = $("inbox");
  list.replaceChildren();
  for (const f of s.frames) {
    const item = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.name = f.name;
    b.title = f.name;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = "inbox/" + encodeURIComponent(f.name);
    img.alt = f.label == null ? f.name : f.label;
    b.append(img);
    b.addEventListener("click", () => select(f.name));
    item.append(b);
    list.append(item);
  }
  let next = prefer && names.includes(prefer) ? prefer : names.includes(current) ? current : null;
  if (next == null && names.length) next = names[Math.min(Math.max(was, 0), names.length - 1)];
  select(next);
}

function run(step) {
  queue = queue.then(step).catch((error) => {
    $("message").textContent = error.message;
    return refresh();
  });
}

function answer(r) {
  if (!r.ok) return r.text().then((text) => { throw new Error(text.trim()); });
  return r.json();
}

function post(action, fields, said, prefer) {
  const query = new URLSearchParams(fields).toString();
  return fetch("api/review/" + action + (query ? "?" + query : ""),
               {method: "POST", headers: {"X-Catdog-Action": action}, credentials: "same-origin"})
    .then(answer).then((s) => { $("message").textContent = said; show(s, prefer); });
}

function refresh() {
  return fetch("api/review", {credentials: "same-origin"}).then(answer).then((s) => show(s));
}

function label(c) {
  run(() => current && post("label", {frame: current, class: c}, current + " -> " + c));
}

function remove() {
  run(() => current && post("delete", {frame: current}, current + " deleted"));
}

function undo() {
  run(() => state.undo && post("undo", {}, "undone: " + state.undo.frame + " is back", state.undo.frame));
}

$("none").addEventListener("click", () => label(state.none));
$("delete").addEventListener("click", remove);
$("undo").addEventListener("click", undo);
$("add").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("new-class").value.trim();
  run(() => post("class", {class: name}, "class " + name + " added").then(() => { $("new-class").value = ""; }));
});

document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
  const names = state.frames.map((f) => f.name);
  const at = names.indexOf(current);
  if (/^[1-9]$/.test(e.key)) {
    const c = state.classes[Number(e.key) - 1];
    if (c) label(c);
  } else if (e.key === "n") label(state.none);
  else if (e.key === "d" || e.key === "Delete") remove();
  else if (e.key === "u") undo();
  else if (e.key === "ArrowRight" && at + 1 < names.length) select(names[at + 1]);
  else if (e.key === "ArrowLeft" && at > 0) select(names[at - 1]);
  else return;
  e.preventDefault();
});

function showRetrain(s) {
  if (!s.retrain) return;
  $("retrain-box").hidden = false;
  $("retrain").disabled = s.retrain.state === "running";
  $("retrain-status").textContent = s.retrain.state === "idle" ? "" : s.retrain.message;
}

function retrainState() {
  return fetch("api/state", {credentials: "same-origin"}).then((r) => r.json()).then(showRetrain).catch(() => {});
}

$("retrain").addEventListener("click", () => {
  $("retrain").disabled = true;
  $("retrain-status").textContent = "starting...";
  fetch("api/model/retrain", {method: "POST", headers: {"X-Catdog-Action": "retrain"}, credentials: "same-origin"})
    .then((r) => r.headers.get("Content-Type") === "application/json" ? r.json() : r.text().then((t) => ({message: t})))
    .then((d) => { $("retrain-status").textContent = d.message.trim(); })
    .catch((error) => { $("retrain-status").textContent = error.message; })
    .finally(retrainState);
});

run(refresh);
retrainState();
setInterval(() => run(() => refresh()), 5000);
setInterval(retrainState, 2000);
"""
