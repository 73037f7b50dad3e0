"use strict";
// Drawing the four parts. Every string that comes from the API (command
// lines, comms, container names, paths: chosen by processes) goes in
// through textContent or setAttribute, never as HTML.
const V = (() => {
  const SVG = "http://www.w3.org/2000/svg";

  // Text as the CLI shows it on a terminal: controls, bidi overrides and
  // isolates, invisible format characters escaped (\x1b, \u{202e}), so
  // that a name cannot reorder or hide what is drawn around it.
  const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
  function shown(s) {
    return String(s).replace(HIDDEN, (c) => {
      const n = c.codePointAt(0);
      return n < 0x100 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u{" + n.toString(16) + "}";
    });
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = shown(text);
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  const key = (ns) => ns.type + ":" + ns.ns;

  function containerName(c) {
    if (!c) return "";
    return c.name || c.pod || (c.id || "").slice(0, 12);
  }

  // "3 process, 1 fd" from a holders array.
  function holders(list) {
    const n = new Map();
    for (const h of list || []) n.set(h.kind, (n.get(h.kind) || 0) + 1);
    return [...n].map(([k, c]) => c + " " + k).join(", ");
  }

  const pad = (n, w) => String(n).padStart(w, "0");

  // ms since the epoch from an RFC 3339 time, keeping the microseconds
  // that Date.parse drops (a 2 ms sandbox needs them).
  function ms(iso) {
    if (!iso) return null;
    const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-].*)$/.exec(iso);
    if (!m) return Date.parse(iso);
    const whole = Date.parse(m[1] + m[3]);
    return whole + (m[2] ? parseFloat("0" + m[2]) * 1000 : 0);
  }

  function clock(t, withMs) {
    const d = new Date(t);
    const s = pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2);
    return withMs ? s + "." + pad(d.getMilliseconds(), 3) : s;
  }

  function duration(m) {
    if (m < 1) return (m * 1000).toFixed(0) + " µs";
    if (m < 1000) return m.toFixed(m < 10 ? 1 : 0) + " ms";
    const s = m / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  // One tree row; `node.children` nested.
  function treeNode(ns, ctx, depth) {
    const k = key(ns);
    const node = el("div", "node");
    node.setAttribute("role", "treeitem");
    node.dataset.key = k;
    const kids = ns.children || [];
    if (ctx.closed.has(k)) node.classList.add("closed");
    if (ns.gone) node.classList.add("is-gone");
    const row = el("div", "row");
    row.dataset.key = k;
    if (ns.id !== null && ns.id !== undefined) row.dataset.id = String(ns.id);
    // A gone one by its id: its inode may be a live one's now.
    row.dataset.open = ns.gone && row.dataset.id ? row.dataset.id : k;
    if (ctx.selected === k && !ns.gone) row.classList.add("sel");
    row.append(el("span", "tog", kids.length ? (ctx.closed.has(k) ? "▸" : "▾") : ""));
    row.append(el("span", "type t-" + ns.type, ns.type));
    row.append(el("span", "ino", ns.ns));
    if (ns.id !== null && ns.id !== undefined) row.append(el("span", "nid", "id " + ns.id));
    const ctr = containerName(ns.container);
    if (ctr) row.append(el("span", "ctr", ctr));
    if (ns.nprocs !== undefined) row.append(el("span", "np", ns.nprocs + (ns.nprocs === 1 ? " proc" : " procs")));
    const h = holders(ns.holders);
    if (h && !(ns.holders || []).every((x) => x.kind === "process")) row.append(el("span", "hold", h));
    if (ns.hidden) row.append(el("span", "mark hidden", "HIDDEN"));
    if (ns.gone) row.append(el("span", "mark gone", "GONE " + clock(ms(ns.gone))));
    else if (ns.created && ctx.now - ms(ns.created.time) < 60000) row.append(el("span", "mark new", "NEW"));
    const what = ns.command ?? (ns.created ? "created by " + ns.created.comm : null) ?? ns.name ?? ns.nsfs ?? "";
    const cmd = el("span", "cmd", what);
    cmd.title = shown(what.length > 300 ? what.slice(0, 300) + "…" : what);
    row.append(cmd);
    node.append(row);
    if (kids.length) {
      const box = el("div", "kids");
      box.setAttribute("role", "group");
      for (const c of kids) box.append(treeNode(c, ctx, depth + 1));
      node.append(box);
    }
    return node;
  }

  function tree(target, roots, gone, ctx) {
    const frag = document.createDocumentFragment();
    for (const ns of roots) frag.append(treeNode(ns, ctx, 0));
    if (!roots.length) frag.append(el("p", "hint", "No namespace matches."));
    if (gone.length) {
      frag.append(el("div", "group-title", "Recently gone (" + gone.length + ")"));
      for (const g of gone) frag.append(treeNode(g, ctx, 0));
    }
    target.replaceChildren(frag);
  }

  // One feed line for a stream event.
  function feedItem(ev) {
    const li = el("li");
    if (ev.type && ev.ns) li.dataset.key = ev.type + ":" + ev.ns;
    if (ev.id !== null && ev.id !== undefined) li.dataset.id = String(ev.id);
    li.dataset.event = ev.event;
    li.append(el("span", "when", clock(ms(ev.time) || Date.now(), true)));
    li.append(el("span", "ev ev-" + ev.event, ev.event));
    if (ev.type) li.append(el("span", "type t-" + ev.type, ev.type));
    const parts = [];
    if (ev.ns) parts.push(String(ev.ns));
    if (ev.pid !== undefined && ev.pid !== null) parts.push("pid " + ev.pid);
    if (ev.comm) parts.push(ev.comm);
    if (ev.syscall) parts.push(ev.syscall);
    if (ev.event === "gone" && ev.created) parts.push("lived " + duration(ms(ev.time) - ms(ev.created)));
    const c = containerName(ev.container);
    if (c) parts.push("[" + c + "]");
    if (ev.error) parts.push(ev.error);
    if (ev.event === "lost") parts.push((ev.records ?? "?") + " records lost");
    li.append(el("span", "what", parts.join("  ")));
    return li;
  }

  // The detail panel of a NamespaceDetail.
  function detail(target, d, ctx) {
    const ns = d.namespace;
    const frag = document.createDocumentFragment();
    const h = el("h3");
    h.append(el("span", "type t-" + ns.type, ns.type), el("span", "mono", ns.ns));
    if (ns.hidden) h.append(el("span", "mark hidden", "HIDDEN"));
    if (ns.gone) h.append(el("span", "mark gone", "GONE"));
    frag.append(h);
    const facts = el("table");
    const fact = (name, value, onClick) => {
      if (value === undefined || value === null || value === "") return;
      const tr = el("tr");
      const td = el("td");
      if (onClick) {
        const a = el("a", null, value);
        a.addEventListener("click", onClick);
        td.append(a);
      } else td.textContent = String(value);
      tr.append(el("th", null, name), td);
      facts.append(tr);
    };
    fact("id", ns.id);
    fact("processes", ns.nprocs);
    fact("pid", ns.pid);
    fact("user", ns.user ?? ns.uid);
    fact("container", containerName(ns.container) + (ns.container ? " (" + ns.container.runtime + ")" : ""));
    fact("name", ns.name);
    fact("nsfs", ns.nsfs);
    fact("netnsid", ns.netnsid);
    if (ns.pns) fact("parent", ns.type + ":" + ns.pns, () => ctx.open(ns.type + ":" + ns.pns));
    if (ns.ons) fact("owner", "user:" + ns.ons, () => ctx.open("user:" + ns.ons));
    fact("gone", ns.gone ? clock(ms(ns.gone), true) : null);
    frag.append(facts);
    if (ns.command) {
      frag.append(el("h4", null, "Command"));
      frag.append(el("code", "wrap mono", ns.command));
    }
    frag.append(el("h4", null, "Creator"));
    if (ns.created) {
      const c = ns.created;
      const t = el("table");
      for (const [n, v] of [
        ["when", clock(ms(c.time), true)],
        ["by", c.comm + " (pid " + c.pid + (c.tid !== c.pid ? ", tid " + c.tid : "") + ")"],
        ["call", c.syscall + " " + (c.flags || []).join("|")],
        ["container", containerName(c.container)],
      ]) {
        if (v) {
          const tr = el("tr");
          tr.append(el("th", null, n), el("td", null, v));
          t.append(tr);
        }
      }
      frag.append(t);
    } else frag.append(el("p", "muted", "Not seen: it was there before the watcher started."));
    frag.append(el("h4", null, "Held by (" + (ns.holders || []).length + ")"));
    const hl = el("ul");
    for (const x of (ns.holders || []).slice(0, 40)) {
      const bits = [x.kind];
      if (x.pid !== undefined) bits.push("pid " + x.pid);
      if (x.tid !== undefined) bits.push("tid " + x.tid);
      if (x.fd !== undefined) bits.push("fd " + x.fd);
      if (x.link) bits.push(x.link);
      if (x.path) bits.push(x.path);
      if (x.ns) bits.push(x.type + ":" + x.ns);
      hl.append(el("li", null, bits.join(" ")));
    }
    if ((ns.holders || []).length > 40) hl.append(el("li", "muted", "and " + (ns.holders.length - 40) + " more"));
    frag.append(hl);
    frag.append(el("h4", null, "Processes (" + d.processes.length + ")"));
    if (d.processes.length) {
      const t = el("table", "procs");
      const head = el("tr");
      for (const n of ["pid", "user", "command"]) head.append(el("th", "c-" + n, n));
      t.append(head);
      for (const p of d.processes.slice(0, 100)) {
        const tr = el("tr");
        tr.append(el("td", "mono", p.pid), el("td", null, p.user ?? p.uid ?? ""), el("td", "mono", p.command ?? ""));
        t.append(tr);
      }
      frag.append(t);
    }
    frag.append(el("h4", null, "History (" + d.history.length + (d.history_dropped ? ", " + d.history_dropped + " dropped" : "") + ")"));
    const hist = el("ul");
    for (const e of d.history.slice(-50)) {
      hist.append(el("li", "mono", clock(ms(e.time), true) + " " + e.event + (e.comm ? " " + e.comm : "") + (e.pid ? " pid " + e.pid : "")));
    }
    frag.append(hist);
    frag.append(el("h4", null, "In a terminal"));
    const term = el("div", "term");
    const cmd = "listns --from " + ctx.from + (ctx.token ? " --token-file FILE" : "") + " " + ns.ns;
    const code = el("code", null, cmd);
    const copy = el("button", null, "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => navigator.clipboard?.writeText(cmd));
    term.append(code, copy);
    frag.append(term);
    target.replaceChildren(frag);
  }

  return { el, shown, svg, key, containerName, holders, ms, clock, duration, tree, feedItem, detail };
})();
