// sagestep console: live updates (polling) and the execution graph (laid out by dagre, vendored in static/vendor).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  // ------------------------------------------------------------------ live lists (executions)
  function pollFragment(container) {
    const url = container.dataset.live;
    let delay = container.dataset.running === "yes" ? POLL_MS : 5 * POLL_MS;
    const tick = async () => {
      if (document.visibilityState === "visible") {
        try {
          const response = await fetch(url, { headers: { "Accept": "text/html" } });
          if (response.ok) {
            const html = await response.text();
            if (html !== container.dataset.last) {
              const focused = document.activeElement && container.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
              container.innerHTML = html;
              container.dataset.last = html;
              if (focused) { const again = container.querySelector(`[href="${CSS.escape(focused)}"]`); if (again) again.focus(); }
            }
            delay = /st-running/.test(html) ? POLL_MS : 5 * POLL_MS;
          }
        } catch (e) { /* the cloud may be restarting: try again later */ }
      }
      setTimeout(tick, delay);
    };
    setTimeout(tick, delay);
  }

  // ------------------------------------------------------------------ execution graph
  function textWidth(text, size) { return Math.max(40, text.length * size * 0.6); }

  function drawGraph(container, data, status) {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
    g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 36, edgesep: 12, marginx: 16, marginy: 16 });
    g.setDefaultEdgeLabel(() => ({}));
    const children = new Set(data.nodes.filter((n) => n.parent).map((n) => n.parent));
    for (const node of data.nodes) {
      const isCluster = children.has(node.id);
      if (isCluster) {
        g.setNode(node.id, { label: node.name, clusterLabelPos: "top", paddingTop: 26 });
      } else if (node.type === "Start" || node.type === "End") {
        const size = node.parent ? 14 : 34;
        g.setNode(node.id, { width: size, height: size });
      } else {
        const width = Math.max(textWidth(node.name, 13), textWidth(node.resource || node.type, 10)) + 24;
        g.setNode(node.id, { width: width, height: 42 });
      }
      if (node.parent) g.setParent(node.id, node.parent);
    }
    data.edges.forEach((edge, index) => {
      // Catch edges keep their label as a tooltip only: one per Task would crowd the graph.
      const label = edge.kind === "choice" || edge.kind === "default" ? edge.label : "";
      const shown = label.length > 28 ? label.slice(0, 27) + "…" : label;
      g.setEdge(edge.source, edge.target, { label: shown, width: shown ? textWidth(shown, 10) : 0, height: shown ? 14 : 0, labelpos: "c", kind: edge.kind, full: edge.label }, "e" + index);
    });
    dagre.layout(g);
    const info = g.graph();
    const svg = el("svg", { viewBox: `0 0 ${info.width} ${info.height}`, width: info.width, height: info.height, role: "group",
      "aria-label": "State machine graph; each state is a button, coloured by what happened" });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }, marker);
    const layers = { clusters: el("g", {}, svg), edges: el("g", {}, svg), nodes: el("g", {}, svg) };
    const byId = new Map(data.nodes.map((n) => [n.id, n]));
    // clusters first (outermost first), so nested ones draw on top
    const clusterIds = data.nodes.filter((n) => children.has(n.id)).map((n) => n.id);
    const depth = (id) => { let d = 0; let p = byId.get(id).parent; while (p) { d += 1; p = byId.get(p).parent; } return d; };
    clusterIds.sort((a, b) => depth(a) - depth(b));
    for (const id of clusterIds) {
      const box = g.node(id);
      const node = byId.get(id);
      const group = el("g", { class: `cluster ${node.type === "Cluster" ? "branch" : "container"}`, "data-node": id }, layers.clusters);
      el("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }, group);
      const label = el("text", { x: box.x - box.width / 2 + 10, y: box.y - box.height / 2 + 16, class: "cluster-label" }, group);
      label.textContent = node.type === "Cluster" ? node.name : `${node.name} (${node.type})`;
      if (node.type !== "Cluster") makeSelectable(group, node);
    }
    for (const edgeObj of g.edges()) {
      const edge = g.edge(edgeObj);
      const points = edge.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`);
      const path = el("path", { d: "M" + points.join(" L"), class: `edge edge-${edge.kind}`, "marker-end": "url(#arrow)" }, layers.edges);
      if (edge.full) { const t = el("title", {}, path); t.textContent = edge.full; }
      if (edge.label) {
        const text = el("text", { x: edge.x, y: edge.y + 4, class: `edge-label edge-label-${edge.kind}`, "text-anchor": "middle" }, layers.edges);
        text.textContent = edge.label;
      }
    }
    for (const node of data.nodes) {
      if (children.has(node.id)) continue;
      const box = g.node(node.id);
      if (node.type === "Start" || node.type === "End") {
        const group = el("g", { class: `marker ${node.parent ? "inner" : "outer"}` }, layers.nodes);
        el("circle", { cx: box.x, cy: box.y, r: box.width / 2 }, group);
        if (!node.parent) { const t = el("text", { x: box.x, y: box.y + 4, "text-anchor": "middle" }, group); t.textContent = node.type; }
        continue;
      }
      const group = el("g", { class: "state", "data-node": node.id }, layers.nodes);
      el("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: node.type === "Choice" ? 18 : 6 }, group);
      const name = el("text", { x: box.x, y: box.y - 3, "text-anchor": "middle", class: "state-name" }, group);
      name.textContent = node.name;
      const kind = el("text", { x: box.x, y: box.y + 13, "text-anchor": "middle", class: "state-kind" }, group);
      kind.textContent = node.resource || node.type;
      makeSelectable(group, node);
    }
    // Fit the pane, but never below 60% of the natural size: a long machine scrolls rather than becoming unreadable.
    const available = Math.max(320, window.innerHeight * 0.84);
    const scale = Math.max(0.6, Math.min(1, container.clientWidth / info.width, available / info.height));
    svg.setAttribute("width", Math.round(info.width * scale));
    svg.setAttribute("height", Math.round(info.height * scale));
    container.replaceChildren(svg);
    applyStatus(container, status);
  }

  function makeSelectable(group, node) {
    group.setAttribute("tabindex", "0");
    group.setAttribute("role", "button");
    group.dataset.state = node.name;
    group.addEventListener("click", (event) => { event.stopPropagation(); selectState(node.name); });
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); selectState(node.name); }
    });
  }

  function applyStatus(container, status) {
    for (const group of container.querySelectorAll("[data-node]")) {
      const st = status[group.dataset.node] || "not-reached";
      group.classList.forEach((c) => { if (c.startsWith("st-")) group.classList.remove(c); });
      group.classList.add("st-" + st);
      if (group.dataset.state) group.setAttribute("aria-label", `${group.dataset.state}: ${st.replace("-", " ")}`);
    }
  }

  let selected = null;
  async function selectState(name) {
    const graph = document.getElementById("graph");
    const panel = document.getElementById("state-panel");
    if (!graph || !panel) return;
    selected = name;
    for (const g of graph.querySelectorAll(".selected")) g.classList.remove("selected");
    for (const g of graph.querySelectorAll("[data-state]")) if (g.dataset.state === name) g.classList.add("selected");
    const url = `${graph.dataset.stateUrl}?state=${encodeURIComponent(name)}&fragment=state`;
    try {
      const response = await fetch(url);
      panel.innerHTML = await response.text();
      history.replaceState(null, "", `?state=${encodeURIComponent(name)}`);
      panel.focus({ preventScroll: true });
      if (panel.getBoundingClientRect().top < 0 || panel.getBoundingClientRect().top > window.innerHeight) panel.scrollIntoView({ block: "start" });
    } catch (e) {
      panel.textContent = "Could not load the state: " + e;
    }
  }

  function pollExecution(graph) {
    const tick = async () => {
      try {
        const response = await fetch(graph.dataset.live);
        if (response.ok) {
          const data = await response.json();
          applyStatus(graph, data.nodes);
          document.getElementById("summary").innerHTML = data.summary;
          document.getElementById("history").innerHTML = data.history;
          for (const row of document.querySelectorAll("#states-body tr[data-node]")) {
            const st = data.nodes[row.dataset.node] || "not-reached";
            const cell = row.querySelector(".state-status");
            if (cell) cell.innerHTML = `<span class="badge st-${st}">${st.replace("-", " ")}</span>`;
          }
          if (selected) selectState(selected);
          if (data.status === "RUNNING") { setTimeout(tick, POLL_MS); } else { graph.dataset.running = "no"; }
          return;
        }
      } catch (e) { /* retry */ }
      setTimeout(tick, POLL_MS * 2);
    };
    setTimeout(tick, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const container of document.querySelectorAll("#live[data-live]")) pollFragment(container);
    const graph = document.getElementById("graph");
    if (graph && window.dagre) {
      const data = JSON.parse(document.getElementById("graph-data").textContent);
      const status = JSON.parse(document.getElementById("node-status").textContent);
      drawGraph(graph, data, status);
      const current = new URLSearchParams(location.search).get("state");
      if (current) {
        selected = current;
        for (const g of graph.querySelectorAll("[data-state]")) if (g.dataset.state === current) g.classList.add("selected");
      }
      if (graph.dataset.running === "yes") pollExecution(graph);
    }
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a.state-link");
      if (link && document.getElementById("graph")) { event.preventDefault(); selectState(link.dataset.state); }
    });
  });
})();
