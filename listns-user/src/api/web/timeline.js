"use strict";
// The time line: each namespace the tracer saw created, as a bar from its
// creation to its death (or now), grouped by container or by creating
// command. Bars are at least MIN_W pixels wide, so that a sandbox that
// lived 2 ms is still a mark one can click. Zoom: the buttons (all, 1 h ..
// 1 ms), the mouse wheel around the pointer; drag to pan.
const TL = (() => {
  const LABEL_W = 150, LANE_H = 14, BAR_H = 10, AXIS_H = 18, MIN_W = 5, MAX_LANES = 4;
  const SPANS = [["all", null], ["1 h", 3600e3], ["10 min", 600e3], ["1 min", 60e3], ["10 s", 10e3],
    ["1 s", 1e3], ["100 ms", 100], ["10 ms", 10], ["1 ms", 1]];
  const STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3,
    60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3];

  // ident (the id; TYPE:INODE without ids) -> {key, type, ns, id, start, end, comm, container}
  const items = new Map();
  // span: null (everything) or ms; end: null (follow now) or a fixed time.
  const view = { span: null, end: null, group: "container" };
  let target, onPick, selected = null, drawn = null;

  function init(el, pick) {
    target = el;
    onPick = pick;
    const zooms = document.getElementById("zooms");
    for (const [label, span] of SPANS) {
      const b = V.el("button", span === null ? "on" : "", label);
      b.type = "button";
      b.dataset.span = span === null ? "" : String(span);
      b.addEventListener("click", () => { view.span = span; view.end = null; draw(); });
      zooms.append(b);
    }
    target.addEventListener("wheel", (e) => {
      if (!drawn) return;
      e.preventDefault();
      const [t0, t1] = drawn.range;
      const at = t0 + ((e.offsetX - LABEL_W) / drawn.plotW) * (t1 - t0);
      const f = e.deltaY > 0 ? 1.5 : 1 / 1.5;
      const span = Math.min(Math.max((t1 - t0) * f, 0.5), 400 * 3600e3);
      const a = Math.min(Math.max((at - t0) / (t1 - t0), 0), 1);
      view.span = span;
      view.end = at + (1 - a) * span;
      draw();
    }, { passive: false });
    let drag = null;
    target.addEventListener("mousedown", (e) => { if (drawn) drag = { x: e.clientX, range: drawn.range }; });
    window.addEventListener("mouseup", () => { drag = null; });
    window.addEventListener("mousemove", (e) => {
      if (!drag || Math.abs(e.clientX - drag.x) < 3) return;
      const [t0, t1] = drag.range;
      const dt = ((e.clientX - drag.x) / drawn.plotW) * (t1 - t0);
      view.span = t1 - t0;
      view.end = t1 - dt;
      draw();
    });
    target.addEventListener("dblclick", () => { view.span = null; view.end = null; draw(); });
    new ResizeObserver(() => draw()).observe(target);
  }

  // Inodes are reused quickly: a namespace is its id where there is one.
  const ident = (f) => (f.id !== null && f.id !== undefined ? "id:" + f.id : f.type + ":" + f.ns);

  function put(f) {
    const k = ident(f);
    const it = items.get(k) || { key: f.type + ":" + f.ns };
    for (const [n, v] of Object.entries(f)) if (v !== undefined && v !== null) it[n] = v;
    if (it.start !== undefined) items.set(k, it);
  }

  // A namespace row (tree) or a verdict (gone list, stream): what it says.
  function fromRow(ns) {
    if (!ns.created) return;
    put({ type: ns.type, ns: ns.ns, id: ns.id, start: V.ms(ns.created.time),
      comm: ns.created.comm, container: V.containerName(ns.container || ns.created.container) });
  }

  function fromVerdict(g) {
    if (!g.created) return;
    put({ type: g.type, ns: g.ns, id: g.id, start: V.ms(g.created), end: V.ms(g.time),
      comm: g.comm, container: V.containerName(g.container) });
  }

  function fromEvent(ev) {
    if (ev.event === "created") {
      // Without ids, an inode reused by a new namespace starts a new bar.
      const old = items.get(ident(ev));
      if (old && old.end !== undefined && old.id !== ev.id) items.delete(ident(ev));
      put({ type: ev.type, ns: ev.ns, id: ev.id, start: V.ms(ev.time), comm: ev.comm,
        container: V.containerName(ev.container) });
    } else if (ev.event === "gone") fromVerdict(ev);
  }

  function select(k) { selected = k; draw(); }

  function groupOf(it) {
    if (view.group === "container") return it.container || "host: " + (it.comm || "?");
    return it.comm || "?";
  }

  function niceStep(span, px) {
    const want = (span / Math.max(px, 1)) * 90;
    return STEPS.find((s) => s >= want) || STEPS[STEPS.length - 1];
  }

  function draw() {
    if (!target) return;
    const now = Date.now();
    const all = [...items.values()];
    for (const b of document.querySelectorAll("#zooms button")) {
      b.classList.toggle("on", String(view.span ?? "") === b.dataset.span && view.end === null);
    }
    const width = Math.max(target.clientWidth, 300);
    const plotW = width - LABEL_W - 12;
    if (!all.length) {
      drawn = null;
      target.replaceChildren(V.el("p", "hint", "Namespaces created while the watcher runs appear here, each as a bar from its creation to its end."));
      document.getElementById("tl-range").textContent = "";
      return;
    }
    let t0, t1;
    if (view.span === null) {
      t0 = Math.min(...all.map((i) => i.start));
      t1 = now;
      const pad = Math.max((t1 - t0) * 0.02, 1);
      t0 -= pad;
      t1 += pad;
    } else {
      t1 = view.end ?? now + view.span * 0.02;
      t0 = t1 - view.span;
    }
    const x = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * plotW;
    // Groups, in order of their first bar; lanes so that bars do not overlap.
    const groups = new Map();
    for (const it of all.sort((a, b) => a.start - b.start)) {
      const end = it.end ?? now;
      if (end < t0 || it.start > t1) continue;
      const g = groupOf(it);
      if (!groups.has(g)) groups.set(g, []);
      const lanes = groups.get(g);
      const xs = Math.max(x(it.start), LABEL_W);
      const xe = Math.max(Math.min(x(end), width), xs + MIN_W);
      let lane = lanes.findIndex((l) => l.right + 2 <= xs);
      if (lane < 0) {
        if (lanes.length < MAX_LANES) lane = lanes.push({ right: 0, bars: [] }) - 1;
        else lane = lanes.reduce((m, l, i) => (l.right < lanes[m].right ? i : m), 0);
      }
      lanes[lane].right = Math.max(lanes[lane].right, xe);
      lanes[lane].bars.push({ it, xs, xe });
    }
    let y = AXIS_H;
    const rows = [];
    for (const [g, lanes] of groups) {
      rows.push({ g, y, lanes });
      y += lanes.length * LANE_H + 6;
    }
    const height = Math.max(y + 4, target.clientHeight - 4);
    const s = V.svg("svg", { width, height, role: "img", "aria-label": "time line" });
    const axis = V.svg("g", { class: "axis" });
    const step = niceStep(t1 - t0, plotW);
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const px = x(t);
      axis.append(V.svg("line", { x1: px, x2: px, y1: AXIS_H - 4, y2: height }));
      if (px > width - 70) continue;
      const label = V.svg("text", { x: px + 2, y: 11 });
      label.textContent = step < 1000 ? V.clock(t, true) : V.clock(t, false);
      axis.append(label);
    }
    s.append(axis);
    rows.forEach((r, i) => {
      const h = r.lanes.length * LANE_H;
      if (i % 2 === 0) s.append(V.svg("rect", { class: "band", x: 0, y: r.y - 2, width, height: h + 4 }));
      const label = V.svg("text", { class: "lane-label", x: 4, y: r.y + 10 });
      const g = V.shown(r.g);
      label.textContent = g.length > 24 ? g.slice(0, 23) + "…" : g;
      const title = V.svg("title", {});
      title.textContent = g;
      label.append(title);
      s.append(label);
      r.lanes.forEach((lane, li) => {
        for (const { it, xs, xe } of lane.bars) {
          const gone = it.end !== undefined;
          const bar = V.svg("rect", {
            class: "bar f-" + it.type + (gone ? " gone" : "") + (it.key === selected || String(it.id) === selected ? " sel" : ""),
            x: xs, y: r.y + li * LANE_H, width: xe - xs, height: BAR_H, rx: 2,
            "data-key": it.key, "data-id": it.id ?? "",
          });
          const tip = V.svg("title", {});
          tip.textContent = it.key + " " + V.shown(it.comm || "") + "\ncreated " + V.clock(it.start, true) +
            (gone ? "\ngone " + V.clock(it.end, true) + " (lived " + V.duration(it.end - it.start) + ")"
              : "\nalive for " + V.duration(now - it.start));
          bar.append(tip);
          const pick = it.end !== undefined && it.id != null ? String(it.id) : it.key;
          bar.addEventListener("click", (e) => { e.stopPropagation(); onPick(pick); });
          s.append(bar);
        }
      });
    });
    if (now >= t0 && now <= t1) {
      s.append(V.svg("line", { class: "now", x1: x(now), x2: x(now), y1: AXIS_H - 4, y2: height }));
    }
    target.replaceChildren(s);
    drawn = { range: [t0, t1], plotW };
    document.getElementById("tl-range").textContent = V.duration(t1 - t0) + " shown";
  }

  function setGroup(g) { view.group = g; draw(); }

  return { init, fromRow, fromVerdict, fromEvent, draw, select, setGroup, items };
})();
