"use strict";
// The page's state and its conversation with the watcher's /v1 API: the
// tree from /v1/namespaces (the -Q filter evaluated by the server), the
// gone from /v1/gone, the live feed from /v1/events/stream (read with
// fetch, so that a bearer token can go with it), one namespace from
// /v1/namespaces/{id}.
(() => {
  const $ = (id) => document.getElementById(id);
  const FEED_MAX = 500, HELD_MAX = 5000, RECENT_MS = 10 * 60e3;
  const S = {
    token: sessionStorage.getItem("listns-token") || "",
    mode: "owner", filter: "", closed: new Set(), selected: null,
    roots: [], gone: [], total: 0, cursor: 0, events: 0,
    paused: false, held: [], feedType: "", feedCtr: "",
    containers: new Map(), // key -> container name, for the feed's filter
  };
  const evOf = new WeakMap(); // feed line -> its event

  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.error) || "the watcher answered " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path) {
    const headers = {};
    if (S.token) headers.Authorization = "Bearer " + S.token;
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) {
      askToken();
      throw new HttpError(401, await r.json().catch(() => null));
    }
    return r;
  }

  async function json(path) {
    const r = await api(path);
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new HttpError(r.status, body);
    return body;
  }

  function status(cls, text) {
    const s = $("status");
    s.className = "status " + cls;
    s.textContent = text;
  }

  function askToken() {
    $("token-form").hidden = false;
    status("down", S.token ? "token refused" : "token needed");
  }

  // ---- the tree ----
  // One refresh at a time, and (with thousands of rows, where one costs
  // a while) at most one per twice what the last one took.
  let busy = false, again = false, timer = null, cost = 0;
  function soon(delay = 200) {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, Math.max(delay, 2 * cost));
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    const t0 = performance.now();
    try {
      const [tree] = await Promise.all([loadTree(), loadGone()]);
      if (tree) drawTree();
      TL.draw();
    } catch (e) {
      if (e.status !== 401) status("down", e.message);
    } finally {
      busy = false;
      cost = performance.now() - t0;
      if (again) { again = false; soon(); }
    }
  }

  async function loadTree() {
    const q = new URLSearchParams({ tree: S.mode });
    if (S.mode === "parent") q.set("type", "pid,user");
    if (S.filter) q.set("filter", S.filter);
    const r = await api("/v1/namespaces?" + q);
    const body = await r.json().catch(() => null);
    if (r.status === 400 && body && body.param === "filter") {
      filterError(body);
      return false;
    }
    if (!r.ok) throw new HttpError(r.status, body);
    filterError(null);
    S.roots = body.namespaces;
    S.total = 0;
    const walk = (list) => {
      for (const ns of list) {
        S.total++;
        TL.fromRow(ns);
        const c = V.containerName(ns.container);
        if (c) S.containers.set(V.key(ns), c);
        if (ns.children) walk(ns.children);
      }
    };
    walk(S.roots);
    return true;
  }

  async function loadGone() {
    const body = await json("/v1/gone");
    for (const g of body.gone) TL.fromVerdict(g);
    const since = Date.now() - RECENT_MS;
    // As tree rows: what the verdict says of it.
    S.gone = body.gone.filter((g) => V.ms(g.time) >= since).slice(0, 200).map((g) => ({
      type: g.type, ns: g.ns, id: g.id, gone: g.time, hidden: false, container: g.container,
      created: g.created ? { time: g.created, comm: g.comm, pid: g.pid } : null,
      command: g.comm ? "created by " + g.comm + (g.pid ? " (pid " + g.pid + ")" : "") : null,
    }));
  }

  function drawTree() {
    // The gone cannot be filtered by the server: shown only without a filter.
    V.tree($("tree"), S.roots, S.filter ? [] : S.gone, { closed: S.closed, selected: S.selected, now: Date.now() });
    $("counts").textContent = S.total + " namespaces · " + S.gone.length + " gone in 10 min · " + S.events + " events";
  }

  function filterError(e) {
    const pre = $("filter-error");
    $("filter").classList.toggle("bad", !!e);
    if (!e) { pre.hidden = true; pre.textContent = ""; return; }
    // As the CLI shows it: the message, the expression, a caret under the place.
    const lines = ["listns: " + e.error];
    if (e.position) lines.push("  " + S.filter, "  " + " ".repeat(Math.max(e.position - 1, 0)) + "^");
    pre.textContent = lines.join("\n");
    pre.hidden = false;
  }

  // ---- the detail ----
  async function open(k) {
    // TYPE:INODE or an id, nothing else goes into the path.
    if (!/^([a-z]+:)?\d+$/.test(k)) return;
    S.selected = k;
    // The address names it: a link to the page opens the same detail.
    history.replaceState(null, "", "#" + k);
    for (const r of document.querySelectorAll("#tree .row.sel")) r.classList.remove("sel");
    for (const r of document.querySelectorAll("#tree .row")) if (r.dataset.open === k) r.classList.add("sel");
    TL.select(k);
    const box = $("detail");
    try {
      const d = await json("/v1/namespaces/" + k);
      if (S.selected !== k) return;
      V.detail(box, d, { open, from: location.origin, token: !!S.token });
    } catch (e) {
      box.replaceChildren(V.el("p", "hint", k + ": " + e.message));
    }
  }

  // ---- the live feed ----
  function feedMatches(ev) {
    if (S.feedType && ev.type !== S.feedType) return false;
    if (!S.feedCtr) return true;
    const want = S.feedCtr.toLowerCase();
    const c = ev.container;
    const names = c ? [c.name, c.id, c.pod] : [S.containers.get(ev.type + ":" + ev.ns)];
    return names.some((n) => n && String(n).toLowerCase().includes(want));
  }

  function feedAdd(ev) {
    const list = $("feed");
    const li = V.feedItem(ev);
    evOf.set(li, ev);
    li.hidden = !feedMatches(ev);
    list.prepend(li);
    while (list.childElementCount > FEED_MAX) list.lastElementChild.remove();
  }

  function refilterFeed() {
    for (const li of $("feed").children) li.hidden = !feedMatches(evOf.get(li));
  }

  function pauseLabel() {
    $("pause").textContent = S.paused ? "Resume" + (S.held.length ? " (" + S.held.length + " new)" : "") : "Pause";
  }

  let tlTimer = null, tlCost = 0, settle = null;
  function onEvent(ev) {
    S.events++;
    TL.fromEvent(ev);
    if (ev.container && ev.type) S.containers.set(ev.type + ":" + ev.ns, V.containerName(ev.container));
    if (S.paused) {
      S.held.push(ev);
      if (S.held.length > HELD_MAX) S.held.shift();
      pauseLabel();
    } else feedAdd(ev);
    if (ev.event !== "left" || ev.syscall !== "exit") {
      soon();
      // The watcher fills in a new namespace's processes and command line
      // as it reads them: once more when things have settled.
      clearTimeout(settle);
      settle = setTimeout(() => soon(0), 1500);
    }
    if (!tlTimer) {
      tlTimer = setTimeout(() => {
        tlTimer = null;
        const t0 = performance.now();
        TL.draw();
        tlCost = performance.now() - t0;
      }, Math.max(250, 2 * tlCost));
    }
  }

  function message(text) {
    let id = null, event = "message", data = "";
    for (const line of text.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? "" : line.slice(c + 1);
      if (v.startsWith(" ")) v = v.slice(1);
      if (field === "id") id = Number(v);
      else if (field === "event") event = v;
      else if (field === "data") data += (data ? "\n" : "") + v;
    }
    if (!data) return;
    let ev;
    try { ev = JSON.parse(data); } catch { return; }
    if (id !== null && Number.isFinite(id)) S.cursor = id;
    if (event === "cut") { ev = { event: "cut", error: ev.error }; }
    if (!ev.event) ev.event = event;
    onEvent(ev);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function stream() {
    for (;;) {
      try {
        const r = await api("/v1/events/stream?since=" + S.cursor);
        if (r.status === 400) { S.cursor = 0; await sleep(500); continue; } // a restarted watcher
        if (!r.ok) throw new Error("the stream answered " + r.status);
        status(S.paused ? "paused" : "live", S.paused ? "paused" : "live");
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            message(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (e.status === 401) return;
      }
      status("down", "disconnected: reconnecting");
      await sleep(2000);
      soon(0);
    }
  }

  // ---- wiring ----
  function wire() {
    for (const t of ["mnt", "net", "pid", "user", "uts", "ipc", "cgroup", "time"]) {
      const o = V.el("option", null, t);
      o.value = t;
      $("feed-type").append(o);
    }
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("listns-token", $("token").value.trim());
      location.reload();
    });
    const mode = (m) => {
      S.mode = m;
      $("mode-owner").classList.toggle("on", m === "owner");
      $("mode-parent").classList.toggle("on", m === "parent");
      refresh();
    };
    $("mode-owner").addEventListener("click", () => mode("owner"));
    $("mode-parent").addEventListener("click", () => mode("parent"));
    const group = (g) => {
      $("group-container").classList.toggle("on", g === "container");
      $("group-command").classList.toggle("on", g === "command");
      TL.setGroup(g);
    };
    $("group-container").addEventListener("click", () => group("container"));
    $("group-command").addEventListener("click", () => group("command"));
    let ft = null;
    const setFilter = () => {
      clearTimeout(ft);
      const v = $("filter").value.trim();
      if (v === S.filter) return;
      S.filter = v;
      refresh();
    };
    $("filter").addEventListener("input", () => { clearTimeout(ft); ft = setTimeout(setFilter, 400); });
    $("filter").addEventListener("keydown", (e) => { if (e.key === "Enter") setFilter(); });
    $("tree").addEventListener("click", (e) => {
      const row = e.target.closest(".row");
      if (!row) return;
      const node = row.parentElement;
      if (e.target.classList.contains("tog") && node.querySelector(".kids")) {
        const closed = node.classList.toggle("closed");
        e.target.textContent = closed ? "▸" : "▾";
        if (closed) S.closed.add(row.dataset.key); else S.closed.delete(row.dataset.key);
        return;
      }
      open(row.dataset.open);
    });
    $("expand").addEventListener("click", () => { S.closed.clear(); drawTree(); });
    $("collapse").addEventListener("click", () => {
      for (const n of document.querySelectorAll("#tree .node")) if (n.querySelector(".kids")) S.closed.add(n.dataset.key);
      drawTree();
    });
    $("feed").addEventListener("click", (e) => {
      const li = e.target.closest("li");
      if (li && li.dataset.key) open(li.dataset.event === "gone" && li.dataset.id ? li.dataset.id : li.dataset.key);
    });
    $("pause").addEventListener("click", () => {
      S.paused = !S.paused;
      if (!S.paused) { for (const ev of S.held) feedAdd(ev); S.held = []; }
      status(S.paused ? "paused" : "live", S.paused ? "paused" : "live");
      pauseLabel();
    });
    $("feed-type").addEventListener("change", (e) => { S.feedType = e.target.value; refilterFeed(); });
    $("feed-container").addEventListener("input", (e) => { S.feedCtr = e.target.value.trim(); refilterFeed(); });
    TL.init($("timeline"), open);
  }

  async function start() {
    wire();
    const t0 = performance.now();
    await refresh();
    // For the bench and the tests: when the first tree was on screen (the
    // frame after it was built has been painted), from the start of the
    // scripts and from the navigation's start.
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    document.body.dataset.firstRender = String(Math.round(performance.now() - t0));
    document.body.dataset.firstRenderAt = String(Math.round(performance.now()));
    const linked = location.hash.slice(1);
    if (linked) open(linked);
    stream();
    // "NEW" marks and bars of the living grow with time; what no event
    // announces (a process exec'd, a holder gone) shows at the next look.
    setInterval(() => TL.draw(), 5000);
    setInterval(() => { if (!document.hidden) soon(0); }, 15000);
  }

  start();
})();
