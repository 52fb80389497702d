// fusec review page, part 2 (inlined into page.js at "/* panel.js */", inside its closure):
// the side panel. Spec strings are shown with textContent only, through visible().
  // ---- the side panel ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    for (const k of kids) if (k != null) e.append(typeof k === "string" ? visible(k) : k);
    return e;
  }
  const jump = (dom, text) => el("button", { type: "button", class: "link", "data-jump": dom }, text);
  const section = (title, ...kids) => [el("h3", null, title), ...kids];
  function fields(pairs) {
    const dl = el("dl");
    for (const [k, v] of pairs) if (v != null && v !== "") dl.append(el("dt", null, k), el("dd", null, v));
    return dl;
  }
  function nodeList(items) {
    const ul = el("ul");
    for (const [dom, text, shape] of items) {
      ul.append(el("li", null, dom && NODES[dom] ? jump(dom, text) : text, shape ? " " : null, shape ? el("span", { class: "shape" }, shape) : null));
    }
    return items.length ? ul : el("p", { class: "doc" }, "none");
  }
  function jsonBlock(value, id) {
    const pre = el("pre", id ? { id } : null);
    // each line shown by visible(); the new lines are JSON's own
    pre.textContent = JSON.stringify(value == null ? null : value, null, 2).split("\n").map(visible).join("\n");
    return pre;
  }
  function sharedParts(dom, n) { // a call of a shared layer: the layer as defined once, and its calls
    const def = (D.shared_layers || {})[n.shared], calls = (SHARED[n.shared] || []).filter((c) => NODES[c]);
    const parts = [el("p", null, n.shared + ": call " + n.call + " of " + n.calls)];
    if (def) {
      const layer = def.config && typeof def.config === "object" ? def.config.layer : null;
      parts.push(fields([["layer", layer], ["weights", num(def.params) + " params, shared by every call"], ["defined at", def.path]]));
      parts.push(jsonBlock(def.config, "panel-shared"));
    }
    parts.push(nodeList(calls.map((c, i) => [c === dom ? null : c, "call " + (i + 1) + ": " + NODES[c].id, null])));
    return section("Shared layer", ...parts);
  }
  function panelParts(dom, n) {
    const parts = [fields([["kind", n.kind], ["op", n.op], ["shape", n.shape || "unknown"]])];
    if (n.doc) parts.push(el("p", { class: "doc" }, n.doc));
    const diff = D.diff && D.diff.nodes && D.diff.nodes[dom];
    if (diff) {
      const ul = el("ul");
      for (const c of diff.changes || []) ul.append(el("li", null, c));
      parts.push(...section("Diff", el("p", null, el("span", { class: "swatch st-" + diff.status }), el("span", { class: "status" }, diff.status)), ul));
    }
    if ((n.problems || []).length) {
      const ul = el("ul", { class: "problems" });
      for (const p of n.problems) ul.append(el("li", null, p));
      parts.push(...section("Problems", ul));
    }
    parts.push(...section("Inputs", nodeList((n.inputs || []).map((i) => [i.dom, i.from, i.shape]))));
    const outs = (consumers[dom] || []).map((c) => [c, NODES[c].id, NODES[c].shape]);
    parts.push(...section("Outputs", nodeList(outs)));
    parts.push(...section("Parameters", fields([["total", num(n.params)], ["trainable", num(n.trainable)], ["non-trainable", num(n.non_trainable)]])));
    if ((n.scope || []).length) parts.push(...section("Block scope", el("p", null, n.scope.join(" › "))));
    if (n.shared != null) parts.push(...sharedParts(dom, n));
    const where = (D.file ? D.file + (n.line ? ":" + n.line : "") + " " : "") + (n.path || "");
    const copy = el("button", { type: "button", "data-copy": n.path || "", "aria-label": "Copy the JSON path" }, "Copy");
    parts.push(...section("In the spec", el("p", null, el("code", null, where), " ", copy)));
    parts.push(...section("Config", jsonBlock(n.config, "panel-config")));
    return parts;
  }
  function openPanel(dom) {
    const n = NODES[dom] || EDGES[dom];
    if (!n) return;
    const title = NODES[dom] ? n.id : "edge " + (NODES[n.from] || {}).id + " → " + (NODES[n.to] || {}).id;
    $("panel-title").textContent = visible(title);
    body.replaceChildren(...(NODES[dom] ? panelParts(dom, n) : edgeParts(n)));
    panel.hidden = false;
  }
  function edgeParts(e) {
    const src = NODES[e.from] || {}, dst = NODES[e.to] || {}, parts = [];
    parts.push(fields([["tensor", e.label || "output"], ["shape", src.shape || "unknown"]]));
    const ends = el("p", { class: "ends" }, src.id ? jump(e.from, src.id) : String(e.from), " → ", dst.id ? jump(e.to, dst.id) : String(e.to));
    parts.push(...section("From → to", ends));
    if ((e.problems || []).length) {
      const probs = el("ul", { class: "problems" });
      for (const p of e.problems) probs.append(el("li", null, p));
      parts.push(...section("Problems", probs));
    }
    return parts;
  }
  function closePanel() {
    panel.hidden = true;
    state.sel = null;
    mark("sel", []);
    mark("tie", []);
  }
  function select(dom, centre) {
    const node = reveal(dom);
    state.sel = dom;
    mark("sel", [dom]);
    mark("tie", shareOf(dom));
    openPanel(dom);
    const n = NODES[dom];
    if (n) {
      const hash = "#node=" + encodeURIComponent(n.id);
      if (location.hash !== hash) try { history.replaceState(null, "", hash); } catch (err) { location.hash = hash; }
    }
    if (centre && node) centreOn(node);
  }
