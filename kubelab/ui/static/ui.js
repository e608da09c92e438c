// kubelab ui: the small frontend. The server draws (Graphviz SVG); this file only swaps the
// map when the server says it changed (Server-Sent Events), shows a clicked object's YAML and
// events, highlights rules, and replays the timeline. No framework, no external asset.
"use strict";

function $(sel, root) { return (root || document).querySelector(sel); }
function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }
function el(tag, text, cls) { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; }

let selected = null;

async function showObject(id) {
  const aside = $("#detail");
  if (!aside) return;
  selected = id;
  markSelected();
  const resp = await fetch("/api/object?id=" + encodeURIComponent(id));
  const data = await resp.json();
  aside.replaceChildren();
  if (!resp.ok) { aside.append(el("p", data.error || "error", "error")); return; }
  aside.append(el("h3", id));
  aside.append(el("code", "$ " + data.command, "cmd"));
  if (data.describe) aside.append(el("code", "$ " + data.describe, "cmd"));
  aside.append(el("h3", "events"));
  if (!data.events.length) aside.append(el("p", "no events", "hint"));
  else {
    const t = el("table");
    for (const e of data.events) {
      const tr = el("tr");
      for (const v of [e.type, e.reason, e.from, e.message]) tr.append(el("td", v || ""));
      t.append(tr);
    }
    aside.append(t);
  }
  aside.append(el("h3", "YAML"));
  aside.append(el("pre", data.yaml, "yaml"));
}

function markSelected() {
  $all("g.selected").forEach(g => g.classList.remove("selected"));
  if (selected) { const g = document.getElementById(selected); if (g) g.classList.add("selected"); }
}

function wireMap(root) {
  root.addEventListener("click", ev => {
    const g = ev.target.closest("g.node, g.cluster");
    if (!g || !g.id) return;
    const id = g.id.replace(/^nodeinfo:/, "node:");
    if (/^(pod|svc|node):/.test(id)) showObject(id);
  });
}

function liveMap() {
  const map = $("#map");
  if (!map) return;
  wireMap(map);
  const live = $("#live");
  let shown = -1, busy = false, want = 0;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      while (want > shown) {
        const target = want;
        const resp = await fetch("/api/map.svg", { cache: "no-store" });
        if (!resp.ok) break;
        const text = await resp.text();
        map.innerHTML = text;
        shown = Math.max(target, parseInt(resp.headers.get("X-Map-Version") || "0", 10));
        map.dataset.version = String(shown);
        markSelected();
      }
    } finally { busy = false; }
  }
  const es = new EventSource("/api/stream");
  es.addEventListener("map", ev => { want = JSON.parse(ev.data).version; live.className = "on"; refresh(); });
  es.onerror = () => { live.className = "off"; };
  es.onopen = () => { live.className = "on"; };
}

function rules() {
  const chips = $all("button.chip[data-svc]");
  chips.forEach(c => c.addEventListener("click", () => {
    const on = !c.classList.contains("active");
    chips.forEach(x => x.classList.remove("active"));
    $all("#rules-table .rl").forEach(l => l.classList.remove("hl"));
    if (!on) return;
    c.classList.add("active");
    const key = c.dataset.svc;
    let first = null;
    $all("#rules-table .rl").forEach(l => {
      if (l.dataset.svc.split(" ").includes(key)) { l.classList.add("hl"); first = first || l; }
    });
    if (first) first.scrollIntoView({ block: "center" });
  }));
}

function timeline() {
  const slider = $("#tl-slider");
  if (!slider) return;
  const rows = $all("#timeline-rows tr[data-i]");
  const markers = $all("circle.marker");
  const bars = $all("rect.bar");
  const now = $("#tl-now");
  let timer = null;
  function show(i) {
    i = Math.max(0, Math.min(parseInt(slider.max, 10), i));
    slider.value = String(i);
    markers.forEach(m => m.classList.toggle("future", parseInt(m.dataset.i, 10) > i));
    rows.forEach(r => {
      const j = parseInt(r.dataset.i, 10);
      r.classList.toggle("future", j > i);
      r.classList.toggle("now", j === i);
    });
    const r = rows[i];
    const tnow = r ? parseFloat(r.dataset.t) : Infinity;
    bars.forEach(b => {  // a component's bar grows from "started" to "healthy" as the replay passes
      const ts = parseFloat(b.dataset.ts), te = parseFloat(b.dataset.te), w = parseFloat(b.dataset.w);
      b.classList.toggle("future", tnow < ts);
      const part = te > ts ? Math.min(1, Math.max(0, (tnow - ts) / (te - ts))) : 1;
      b.setAttribute("width", String(Math.max(2, w * part)));
    });
    if (r) {
      const c = r.children;
      now.textContent = "step " + (i + 1) + "/" + rows.length + ": +" + c[0].textContent + "s " + c[1].textContent + ": " + c[2].textContent;
      const box = r.closest(".rows");
      if (box) box.scrollTop = r.offsetTop - box.clientHeight / 2;
    }
  }
  slider.addEventListener("input", () => show(parseInt(slider.value, 10)));
  $("#tl-first").onclick = () => show(0);
  $("#tl-last").onclick = () => show(rows.length - 1);
  $("#tl-prev").onclick = () => show(parseInt(slider.value, 10) - 1);
  $("#tl-next").onclick = () => show(parseInt(slider.value, 10) + 1);
  $("#tl-play").onclick = () => {
    if (timer) { clearInterval(timer); timer = null; $("#tl-play").textContent = "play"; return; }
    if (parseInt(slider.value, 10) >= rows.length - 1) show(0);
    $("#tl-play").textContent = "pause";
    timer = setInterval(() => {
      const i = parseInt(slider.value, 10) + 1;
      if (i >= rows.length) { clearInterval(timer); timer = null; $("#tl-play").textContent = "play"; return; }
      show(i);
    }, 400);
  };
  show(rows.length - 1);
}

document.addEventListener("DOMContentLoaded", () => {
  const p = document.body.dataset.page;
  if (p === "map") liveMap();
  if (p === "trace") { const m = $("#trace-map"); if (m) wireMap(m); }
  if (p === "rules") rules();
  if (p === "timeline") timeline();
});
