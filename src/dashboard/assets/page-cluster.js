// Cluster: this node and every peer it knows, their state and replication lag.

import { api } from "./api.js";
import { h, replace, table, section, badge, code, ms, ago, datetime } from "./dom.js";

export async function clusterPage(root) {
  const refresh = h("button", { type: "button", class: "btn small", testid: "cluster-refresh", text: "Refresh" });
  const box = h("div");
  replace(root, h("div", { class: "page-head" }, h("h1", { text: "Cluster" }), h("div", { class: "page-actions" }, refresh)), box);
  const load = async () => {
    const c = await api.get("/api/cluster");
    if (!root.isConnected) return;
    render(box, c);
  };
  refresh.addEventListener("click", () => load().catch(() => {}));
  await load();
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}

function render(box, c) {
  if (!c.enabled) {
    replace(box,
      section("This node runs alone", null,
        h("div", { class: "empty", testid: "cluster-alone" },
          h("p", { class: "empty-title" }, "Node ", code(c.node), " has no cluster secret, so it shares nothing with other nodes."),
          h("p", null, "To form a cluster, start every node with the same ", code("TOLLGATE_CLUSTER_SECRET"),
            " (at least 32 characters) and point the others at a first node with ", code("TOLLGATE_SEEDS=host:7946"),
            ". See docs/cluster.md."))),
      memberTable([{ node: c.node, quic: "—", http: location.host, state: "alive", self: true }]));
    return;
  }
  const self = { node: c.node, quic: c.quic, http: c.http, wire: c.wire, state: "alive", self: true };
  const members = [self, ...[...(c.members || [])].sort((a, b) => a.node.localeCompare(b.node))];
  const alive = members.filter((m) => m.state === "alive").length;
  replace(box,
    h("div", { class: "stats" },
      h("div", { class: "stat" }, h("div", { class: "stat-label", text: "Members" }), h("div", { class: "stat-value", testid: "cluster-count", text: String(members.length) })),
      h("div", { class: "stat" }, h("div", { class: "stat-label", text: "Alive" }), h("div", { class: "stat-value", testid: "cluster-alive", text: String(alive) })),
      h("div", { class: "stat" }, h("div", { class: "stat-label", text: "Down" }), h("div", { class: "stat-value", testid: "cluster-down", text: String(members.length - alive) }))),
    memberTable(members));
}

function memberTable(members) {
  return section("Members", null, table([
    { label: "Node", cell: (m) => h("div", null, h("code", { testid: "member-node", text: m.node }), m.self ? h("span", { class: "muted small", text: " (this node)" }) : null) },
    { label: "State", cell: (m) => h("div", null, h("span", { testid: "member-state" }, badge(m.state, m.state === "alive" ? "ok" : "error")),
      m.since_ms ? h("div", { class: "muted small", title: datetime(m.since_ms), text: `since ${ago(m.since_ms)}` }) : null) },
    { label: "HTTP", cell: (m) => code(m.http || "—") },
    { label: "Cluster (QUIC)", cell: (m) => code(m.quic || "—") },
    { label: "Wire", cell: (m) => (m.wire ? m.wire.join("–") : "—") },
    { label: "Last sync", class: "num", cell: (m) => (m.self ? "—" : m.last_sync_ago_ms === null || m.last_sync_ago_ms === undefined ? "not yet" : `${ms(m.last_sync_ago_ms)} ago`) },
    { label: "Push lag", class: "num", cell: (m) => (m.self ? "—" : m.last_push_lag_ms === null || m.last_push_lag_ms === undefined ? "—" : ms(m.last_push_lag_ms)) },
  ], members, { testid: "cluster-table", rowAttrs: (m) => ({ testid: "cluster-member", dataset: { node: m.node, state: m.state, self: m.self ? "true" : "false" } }) }));
}
