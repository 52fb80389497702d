// fusec review page: pan, zoom, search, a side panel, folding blocks, ×N views. No library, no network.
// Spec strings only ever reach the page through textContent (never innerHTML), shown by visible().
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("fusec-data").textContent);
  const NODES = D.nodes || {}, EDGES = D.edges || {}, GROUPS = D.groups || {}, SHARED = D.shared || {};
  const $ = (id) => document.getElementById(id);
  const stage = $("stage"), panel = $("panel"), body = $("panel-body"), search = $("search");
  const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\u{1bca0}-\u{1bca3}\u{e0100}-\u{e01ef}]/gu;
  const hex = (c, n) => c.toString(16).padStart(n, "0");
  const visible = (s) => String(s).replace(UNSAFE, (ch) => {
    const c = ch.codePointAt(0);
    return c < 0x100 ? "\\x" + hex(c, 2) : c < 0x10000 ? "\\u" + hex(c, 4) : "\\U" + hex(c, 8);
  });
  const num = (n) => Number(n || 0).toLocaleString("en-US");

  // ---- indexes, built once ----
  const byId = new Map(), consumers = {}, groupsOf = {}, blocks = [];
  for (const [dom, n] of Object.entries(NODES)) {
    byId.set(n.id, dom);
    for (const inp of n.inputs || []) if (inp.dom) (consumers[inp.dom] = consumers[inp.dom] || []).push(dom);
  }
  for (const [g, grp] of Object.entries(GROUPS)) {
    if (grp.kind !== "block") continue;
    blocks.push(g);
    for (const m of grp.members || []) (groupsOf[m] = groupsOf[m] || []).push(g);
  }
  const size = (g) => (GROUPS[g].members || []).length;
  const inside = {}; // block group -> the block groups around it
  for (const g of blocks) {
    const first = (GROUPS[g].members || [])[0];
    inside[g] = (groupsOf[first] || []).filter((o) => o !== g && (size(o) > size(g) || (size(o) === size(g) && o < g)));
  }
  const hay = Object.entries(NODES).map(([dom, n]) => [dom, String(n.id).toLowerCase(), String(n.label || "").toLowerCase(), String(n.op || "").toLowerCase()]);

  const views = {};
  for (const div of stage.querySelectorAll(".view")) {
    const name = div.dataset.view, svg = div.querySelector("svg"), prefix = name + "-", idx = new Map();
    for (const el of svg.querySelectorAll("g[id]")) if (el.id.startsWith(prefix)) idx.set(el.id.slice(prefix.length), el);
    for (const p of svg.querySelectorAll("g.edge > path")) { // a wide transparent twin under each edge: easy to click
      const hit = p.cloneNode(false);
      hit.setAttribute("class", "hit");
      p.before(hit);
    }
    const b = svg.viewBox.baseVal;
    const graph = svg.querySelector("g.graph") || svg;
    views[name] = { name, div, svg, idx, prefix, graph, base: { x: b.x, y: b.y, w: b.width || 1, h: b.height || 1 }, vb: null, boxes: {}, overlay: null };
  }
  const state = { view: views.main, sel: null, folded: new Set(), matches: [], at: -1, marks: {} };
  const domOf = (el) => el && el.id.startsWith(state.view.prefix) ? el.id.slice(state.view.prefix.length) : null;

  // ---- pan and zoom: the viewBox always has the stage's aspect ratio, so client <-> SVG is linear.
  // During a gesture (drag, wheel burst, pinch) the SVG only moves by a CSS transform (composited, no
  // repaint of the diagram); the viewBox takes the final box once the gesture settles.
  let rect = stage.getBoundingClientRect(), moving = false, settleTimer = 0;
  const pointers = new Map(); // the pointers down on the stage: [x, y] by pointerId
  const box = (b) => b.x + " " + b.y + " " + b.w + " " + b.h;
  function draw() {
    const v = state.view, b = v.vb, c = v.shown;
    if (moving && c) { // the painted box c, moved and scaled onto the live box b
      const s = c.w / b.w, tx = (c.x - b.x) * rect.width / b.w, ty = (c.y - b.y) * rect.height / b.h;
      v.div.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + s + ")";
      return;
    }
    v.svg.setAttribute("viewBox", box(b));
    v.div.style.transform = "";
    v.shown = { x: b.x, y: b.y, w: b.w, h: b.h };
  }
  function begin() {
    if (!state.view.shown) return;
    clearTimeout(settleTimer);
    moving = true;
    stage.classList.add("moving");
  }
  function still() {
    clearTimeout(settleTimer);
    moving = false;
    stage.classList.remove("moving");
  }
  const settle = () => { if (moving) { still(); draw(); } };
  const settleSoon = () => { // a wheel burst: settles 160 ms after its last event, unless a pointer is down
    begin();
    settleTimer = setTimeout(() => { if (!pointers.size) settle(); }, 160);
  };
  function fit(v) {
    v = v || state.view;
    const b = v.base, pad = 12;
    const k = Math.min((rect.width - 2 * pad) / b.w, (rect.height - 2 * pad) / b.h) || 1;
    const w = rect.width / k, h = rect.height / k;
    v.vb = { x: b.x - (w - b.w) / 2, y: b.y - (h - b.h) / 2, w, h };
    if (v === state.view) { still(); draw(); }
  }
  const toSvg = (cx, cy) => {
    const b = state.view.vb;
    return [b.x + (cx - rect.left) * b.w / rect.width, b.y + (cy - rect.top) * b.h / rect.height];
  };
  function zoomAt(factor, cx, cy) {
    const v = state.view, b = v.vb, [px, py] = toSvg(cx, cy);
    const w = Math.min(Math.max(b.w / factor, 20), Math.max(v.base.w, v.base.h) * 8);
    const h = w * rect.height / rect.width;
    v.vb = { x: px - (cx - rect.left) * w / rect.width, y: py - (cy - rect.top) * h / rect.height, w, h };
    draw();
  }
  const zoomCentre = (f) => zoomAt(f, rect.left + rect.width / 2, rect.top + rect.height / 2);
  function pan(dx, dy) { // in screen pixels
    const b = state.view.vb;
    b.x -= dx * b.w / rect.width;
    b.y -= dy * b.h / rect.height;
    draw();
  }
  function centreOn(el) {
    const r = el.getBoundingClientRect(), v = state.view, b = v.vb;
    if (!r.width && !r.height) return;
    const [cx, cy] = toSvg(r.left + r.width / 2, r.top + r.height / 2), big = Math.max(r.width, r.height);
    if (big < 40) { // too small to read: zoom in so that it is about 90 px across
      const w = Math.max(b.w * big / 90, 20);
      b.h = w * b.h / b.w;
      b.w = w;
    }
    b.x = cx - b.w / 2;
    b.y = cy - b.h / 2;
    draw();
  }
  new ResizeObserver(() => {
    const old = rect;
    still();
    rect = stage.getBoundingClientRect();
    for (const v of Object.values(views)) {
      if (!v.vb || !old.width) { if (v === state.view) fit(v); continue; }
      const k = v.vb.w / old.width, cx = v.vb.x + v.vb.w / 2, cy = v.vb.y + v.vb.h / 2;
      v.vb = { w: rect.width * k, h: rect.height * k, x: cx - rect.width * k / 2, y: cy - rect.height * k / 2 };
    }
    draw();
  }).observe(stage);

  // ---- marks: classes on elements of the current view, cleared per kind ----
  function mark(cls, doms) {
    for (const el of state.marks[cls] || []) el.classList.remove(cls);
    const els = [];
    for (const d of doms) { const el = state.view.idx.get(d); if (el) { el.classList.add(cls); els.push(el); } }
    state.marks[cls] = els;
  }
  const shareOf = (dom) => (NODES[dom] && NODES[dom].shared != null ? SHARED[NODES[dom].shared] || [] : []);

  // ---- views and folding ----
  function show(name) {
    const v = views[name];
    if (!v || v === state.view) return;
    settle();
    for (const cls of Object.keys(state.marks)) mark(cls, []);
    state.view.div.hidden = true;
    v.div.hidden = false;
    state.view = v;
    rect = stage.getBoundingClientRect();
    if (!v.vb) fit(v); else draw();
    const rb = $("btn-repeat");
    rb.textContent = name === "main" ? "Unfold ×N" : "Fold ×N";
    rb.setAttribute("aria-pressed", String(name !== "main"));
    if (state.sel) mark("sel", [state.sel]);
    if (state.matches.length) mark("hit", state.matches);
  }
  const foldedAround = (dom) => (groupsOf[dom] || []).filter((g) => state.folded.has(g));
  function foldBox(v, g) {
    if (v.boxes[g]) return v.boxes[g];
    const frame = v.idx.get(g), poly = frame && frame.querySelector("polygon, path");
    if (!poly) return null;
    // Graphviz writes absolute coordinates (polygon points, or a path's M and C pairs): no layout needed
    const pts = (poly.getAttribute("points") || poly.getAttribute("d") || "").match(/-?\d+(?:\.\d+)?(?:e-?\d+)?/g).map(Number);
    const xs = pts.filter((_, i) => i % 2 === 0), ys = pts.filter((_, i) => i % 2 === 1);
    const x = Math.min(...xs), y = Math.min(...ys), w = Math.max(...xs) - x, h = Math.max(...ys) - y;
    if (!v.overlay) {
      v.overlay = document.createElementNS(v.svg.namespaceURI, "g");
      v.overlay.setAttribute("class", "fold-layer");
      v.graph.appendChild(v.overlay);
    }
    const ns = v.svg.namespaceURI, box = document.createElementNS(ns, "g");
    box.setAttribute("class", "fold-box");
    box.dataset.group = g;
    const r = document.createElementNS(ns, "rect");
    for (const [k, val] of Object.entries({ x, y, width: w, height: h, rx: 6 })) r.setAttribute(k, val);
    box.appendChild(r);
    const grp = GROUPS[g], fs = Math.max(6, Math.min(14, h / 3, w / 16));
    const lines = [visible(grp.label || g), num(size(g)) + " nodes, " + num(grp.params) + " params · click to unfold"];
    lines.forEach((line, i) => {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x + w / 2);
      t.setAttribute("y", y + h / 2 + (i - 0.3) * fs * 1.3);
      t.setAttribute("text-anchor", "middle");
      t.setAttribute("font-size", fs);
      t.textContent = line;
      box.appendChild(t);
    });
    const title = document.createElementNS(ns, "title");
    title.textContent = lines.join("\n");
    box.appendChild(title);
    v.overlay.appendChild(box);
    return (v.boxes[g] = box);
  }
  function refreshFolds() {
    for (const v of Object.values(views)) {
      for (const [dom, gs] of Object.entries(groupsOf)) {
        const el = v.idx.get(dom);
        if (el) el.style.display = gs.some((g) => state.folded.has(g)) ? "none" : "";
      }
      for (const g of blocks) {
        const outer = inside[g].some((o) => state.folded.has(o)), el = v.idx.get(g);
        if (el) el.style.display = outer || state.folded.has(g) ? "none" : "";
        const box = state.folded.has(g) && !outer ? foldBox(v, g) : v.boxes[g];
        if (box) box.style.display = state.folded.has(g) && !outer ? "" : "none";
      }
      for (const [e, ed] of Object.entries(EDGES)) {
        const el = v.idx.get(e);
        if (!el) continue;
        const to = new Set(foldedAround(ed.to));
        el.style.display = foldedAround(ed.from).some((g) => to.has(g)) ? "none" : "";
      }
    }
  }
  function fold(g, on) {
    if (on) state.folded.add(g); else state.folded.delete(g);
    refreshFolds();
  }
  function foldAll(on) {
    state.folded = new Set(on ? blocks.filter((g) => !inside[g].length) : []);
    refreshFolds();
  }
  function reveal(dom) { // make a node visible: the view that has it, its folded blocks opened
    if (!state.view.idx.has(dom)) for (const v of Object.values(views)) if (v.idx.has(dom)) { show(v.name); break; }
    const around = foldedAround(dom);
    if (around.length) { for (const g of around) state.folded.delete(g); refreshFolds(); }
    return state.view.idx.get(dom);
  }

  /* panel.js */
  // ---- search ----
  function runSearch() {
    const q = search.value.trim().toLowerCase();
    const found = q ? hay.filter(([, id, label, op]) => id.includes(q) || label.includes(q) || op.includes(q)).map((h) => h[0]) : [];
    const here = found.filter((d) => state.view.idx.has(d)); // this view's matches first
    state.matches = here.concat(found.filter((d) => !state.view.idx.has(d)));
    state.at = -1;
    mark("hit", state.matches);
    mark("cur", []);
    $("search-count").textContent = q ? (state.matches.length ? state.matches.length + " found" : "no match") : "";
  }
  function step(by) {
    const m = state.matches;
    if (!m.length) return;
    state.at = (state.at + by + m.length) % m.length;
    const dom = m[state.at], node = reveal(dom);
    mark("hit", m);
    mark("cur", [dom]);
    $("search-count").textContent = (state.at + 1) + " / " + m.length;
    if (node) centreOn(node);
  }
  function clearSearch() {
    search.value = "";
    runSearch();
  }

  // ---- problems and diff ----
  function buildProblems() {
    const list = $("problem-list"), probs = D.problems || [];
    for (const p of probs) {
      const target = (p.nodes || [])[0] || (p.edges || [])[0];
      const text = (p.line ? "line " + p.line + ": " : "") + p.text;
      list.append(el("li", null, target ? jump(target, text) : text));
    }
    const btn = $("btn-problems");
    if (!probs.length) return;
    btn.hidden = false;
    btn.textContent = "⚠ " + probs.length + (probs.length === 1 ? " problem" : " problems");
    toggleProblems(true);
  }
  function toggleProblems(on) {
    $("problems").hidden = !on;
    $("btn-problems").setAttribute("aria-expanded", String(on));
  }
  function buildDiff() {
    if (!D.diff) return;
    const legend = $("diff-legend"), s = D.diff.summary || {};
    legend.append(el("strong", null, "diff " + D.diff.old + " → " + D.diff.new));
    for (const st of ["added", "removed", "changed", "renamed", "same"]) {
      legend.append(el("span", null, el("span", { class: "swatch st-" + st }), st + " " + num(s[st])));
    }
    legend.hidden = false;
  }

  // ---- events: one delegated listener per kind ----
  let drag = null, moved = false;
  stage.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, id: e.pointerId };
    moved = false;
  });
  stage.addEventListener("pointermove", (e) => {
    const prev = pointers.get(e.pointerId);
    if (pointers.size === 2 && prev) { // pinch
      const [a, b] = [...pointers.values()], other = a === prev ? b : a;
      const d0 = Math.hypot(prev[0] - other[0], prev[1] - other[1]), d1 = Math.hypot(e.clientX - other[0], e.clientY - other[1]);
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      begin();
      if (d0 > 0) zoomAt(d1 / d0, (e.clientX + other[0]) / 2, (e.clientY + other[1]) / 2);
      moved = true;
      return;
    }
    if (prev) pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (!drag || drag.id !== e.pointerId) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!moved && Math.hypot(dx, dy) < 4) return;
    if (!moved) { moved = true; stage.classList.add("dragging"); stage.setPointerCapture(e.pointerId); begin(); }
    pan(dx, dy);
    drag.x = e.clientX;
    drag.y = e.clientY;
  });
  const endDrag = (e) => {
    pointers.delete(e.pointerId);
    drag = null;
    stage.classList.remove("dragging");
    if (!pointers.size) settle();
  };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    settleSoon();
    const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    if (e.ctrlKey || !e.shiftKey) zoomAt(Math.exp(-dy * (e.ctrlKey ? 0.01 : 0.002)), e.clientX, e.clientY);
    else pan(-e.deltaX || -dy, 0);
  }, { passive: false });
  stage.addEventListener("click", (e) => {
    if (moved) { moved = false; return; }
    const t = e.target, box = t.closest(".fold-box");
    if (box) return fold(box.dataset.group, false);
    const cluster = t.closest("g.cluster"), dom = domOf(cluster);
    if (cluster && t.tagName === "text" && dom) {
      if (GROUPS[dom] && GROUPS[dom].kind === "repeat" && state.view.name !== "main") return switchRepeat("main", dom);
      if (GROUPS[dom] && GROUPS[dom].kind === "block") return fold(dom, true);
    }
    const node = domOf(t.closest("g.node"));
    if (node && GROUPS[node] && GROUPS[node].kind === "repeat" && views.unfolded) return switchRepeat("unfolded", node);
    if (node && NODES[node]) return select(node, false);
    const edge = domOf(t.closest("g.edge"));
    if (edge && EDGES[edge]) { mark("sel", [edge]); openPanel(edge); }
  });
  function switchRepeat(name, dom) {
    show(name);
    const target = state.view.idx.get(dom);
    if (target) centreOn(target);
  }
  stage.addEventListener("mouseover", (e) => {
    if (moving) return;
    const dom = domOf(e.target.closest("g.node"));
    mark("hov", dom ? shareOf(dom) : []);
  });
  document.addEventListener("click", (e) => {
    const j = e.target.closest("[data-jump]");
    if (j) return select(j.dataset.jump, true);
    const c = e.target.closest("[data-copy]");
    if (c) copyText(c.dataset.copy, c);
  });
  function copyText(text, btn) {
    const done = () => { btn.textContent = "Copied"; setTimeout(() => { btn.textContent = "Copy"; }, 1200); };
    const fallback = () => {
      const ta = el("textarea");
      ta.value = text;
      document.body.append(ta);
      ta.select();
      document.execCommand("copy");
      ta.remove();
      done();
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === "ArrowDown") { e.preventDefault(); step(e.shiftKey ? -1 : 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); step(-1); }
    else if (e.key === "Escape") { e.preventDefault(); clearSearch(); search.blur(); }
    e.stopPropagation();
  });
  const KEYS = {
    "/": () => search.focus(),
    Escape: () => { closePanel(); clearSearch(); },
    ArrowLeft: () => pan(rect.width / 8, 0),
    ArrowRight: () => pan(-rect.width / 8, 0),
    ArrowUp: () => pan(0, rect.height / 8),
    ArrowDown: () => pan(0, -rect.height / 8),
    "+": () => zoomCentre(1.25),
    "=": () => zoomCentre(1.25),
    "-": () => zoomCentre(0.8),
    "0": () => fit(),
    f: () => foldAll(true),
    F: () => foldAll(false),
  };
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "input" || tag === "textarea") return;
    const act = KEYS[e.key];
    if (act) { e.preventDefault(); act(); }
  });
  $("btn-fit").addEventListener("click", () => fit());
  $("btn-zoom-in").addEventListener("click", () => zoomCentre(1.25));
  $("btn-zoom-out").addEventListener("click", () => zoomCentre(0.8));
  $("btn-fold").addEventListener("click", () => foldAll(true));
  $("btn-unfold").addEventListener("click", () => foldAll(false));
  $("btn-repeat").addEventListener("click", () => show(state.view.name === "main" ? "unfolded" : "main"));
  $("btn-problems").addEventListener("click", () => toggleProblems($("problems").hidden));
  $("problems-close").addEventListener("click", () => toggleProblems(false));
  $("panel-close").addEventListener("click", closePanel);
  function fromHash() {
    const m = /^#node=(.*)$/.exec(location.hash);
    if (!m) return;
    let id;
    try { id = decodeURIComponent(m[1]); } catch (err) { return; }
    const dom = byId.get(id);
    if (dom && dom !== state.sel) select(dom, true);
  }
  window.addEventListener("hashchange", fromHash);

  // ---- start ----
  if (views.unfolded) $("btn-repeat").hidden = false;
  if (!blocks.length) { $("btn-fold").hidden = true; $("btn-unfold").hidden = true; }
  buildProblems();
  buildDiff();
  fit(views.main);
  fromHash();
  window.__fusecReady = performance.now();
})();
