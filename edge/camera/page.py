"""The preview's one page and its script: the MJPEG stream, the live state (server-sent events, or polling where
EventSource is missing), the last label events with their snapshots, and the model's contract and source.

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
<dt>labels</dt><dd>{labels}</dd>
<dt>input</dt><dd>{input}</dd>
<dt>crop</dt><dd>{crop}</dd>
<dt>file</dt><dd>{model}</dd>
</dl>
<h2>Source</h2>
<p id="source">{source}</p>
</aside>
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


def render_page(info: dict[str, Any], events_kept: int) -> bytes:
    """The page as UTF-8 bytes, with the model's contract and the source filled in (escaped)."""
    height, width = info.get("input_hw", ("?", "?"))
    return PAGE.format(
        keep=int(events_kept),
        labels=escape(", ".join(str(label) for label in info.get("labels", ()))),
        input=escape(f"{height}x{width} {info.get('color', '')}, resize {info.get('resize', '')}"),
        crop=escape("the whole frame" if info.get("crop", 1) == 1 else f"the centre {info.get('crop')} of each side"),
        model=escape(str(info.get("model", ""))),
        source=escape(str(info.get("source", ""))),
    ).encode("utf-8")
