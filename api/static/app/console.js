// The console: one map of what the caller may see, the event list and its workflow,
// the grid list, and patrol routes for coordinators. Everything comes from the same
// HTTP API as other clients (session cookie + CSRF token), scoped by role and area.
import { call, get } from "./api.js";
import { apply, label, t, toggle } from "./i18n.js";
import { renderEvent, when } from "./eventcard.js";

const L = window.L;
const cfg = JSON.parse(document.getElementById("gm-config").textContent);
const el = (tag, cls) => { const e = document.createElement(tag); if (cls) e.className = cls; return e; };
const toastEl = document.getElementById("toast");
const toast = (text) => { toastEl.textContent = text; toastEl.hidden = false; clearTimeout(toast.t); toast.t = setTimeout(() => { toastEl.hidden = true; }, 3500); };
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

document.getElementById("lang").addEventListener("click", () => { toggle(); refreshAll(); });
apply();

// -- the map ----------------------------------------------------------------------
const map = L.map("map", { preferCanvas: true, zoomControl: true, attributionControl: false });
L.control.attribution({ prefix: "gridmap · Leaflet · © OpenStreetMap" }).addTo(map);
const overlays = {};
const control = L.control.layers(null, {}, { collapsed: false, position: "topright" }).addTo(map);
function overlay(key, zh, en, layer, on = true) {
  if (overlays[key]) { control.removeLayer(overlays[key]); map.removeLayer(overlays[key]); }
  overlays[key] = layer;
  control.addOverlay(layer, `${t(zh, en)}`);
  if (on) layer.addTo(map);
  return layer;
}
const STATUS_COLOURS = { closed: "#2e7d32", rejected: "#757575", merged: "#757575" };
const OPEN_COLOUR = "#e65100";
const OVERDUE_COLOUR = "#b71c1c";
const HOT = { hot_99: "#b2182b", hot_95: "#ef8a62", hot_90: "#fddbc7", cold_90: "#d1e5f0", cold_95: "#67a9cf", cold_99: "#2166ac" };
const legend = document.getElementById("legend");

function bboxParam() {
  const b = map.getBounds();
  return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",");
}

let grids = { type: "FeatureCollection", features: [] };
async function loadGrids() {
  grids = await get("/collections/grids/items?limit=2000&f=json");
  const mine = cfg.user.areas.filter((a) => a);
  grids.features = grids.features.filter((f) => !mine.length || mine.some((a) => String(f.properties.code).startsWith(a) || a.startsWith(String(f.properties.community_code || ""))));
  const layer = L.geoJSON(grids, {
    style: { color: "#12395e", weight: 2, fillOpacity: 0.03 },
    onEachFeature: (f, l) => {
      l.bindTooltip(`${f.properties.name || ""} ${f.properties.code}`, { sticky: true });
      l.bindPopup(() => gridPopup(f), { maxWidth: 360 });
    },
  });
  overlay("grids", "网格", "Grids", layer);
  const b = layer.getBounds();
  if (b.isValid()) map.fitBounds(b, { padding: [20, 20] });
  else map.setView([0, 0], 2);
  fillGridList();
  const sel = document.getElementById("route-grid");
  sel.replaceChildren(...grids.features.map((f) => { const o = el("option"); o.value = f.properties.code; o.textContent = `${f.properties.name || ""} ${f.properties.code}`.trim(); return o; }));
}

function gridPopup(f) {
  const p = f.properties;
  const rows = [
    ["网格编码", "Grid code", p.code],
    ["所属社区", "Community", p.community_code],
    ["户数", "Households", p.households],
    ["人口", "Residents", p.residents],
    ["楼栋", "Buildings", p.buildings],
    ["网格员", "Workers", Array.isArray(p.workers) ? p.workers.join("、") : p.workers],
  ].filter((r) => r[2] !== undefined && r[2] !== null && r[2] !== "");
  return `<table class="popup"><caption>${esc(p.name || p.code)}</caption>${rows.map((r) => `<tr><th>${esc(t(r[0], r[1]))}</th><td>${esc(r[2])}</td></tr>`).join("")}</table>`;
}

async function loadContext() {
  for (const [name, zh, en, style, minZoom] of [
    ["roads", "道路", "Roads", { color: "#9e9e9e", weight: 1.5 }, 14],
    ["buildings", "楼栋", "Buildings", { color: "#795548", weight: 1, fillColor: "#d7ccc8", fillOpacity: 0.6 }, 15],
    ["key_areas", "重点区域", "Key areas", { color: "#6a1b9a", weight: 2, fillOpacity: 0.12 }, 0],
  ]) {
    const group = overlay(name, zh, en, L.layerGroup(), name !== "roads");
    const load = async () => {
      if (!map.hasLayer(group)) return;
      group.clearLayers();
      if (map.getZoom() < minZoom) return;
      try {
        const fc = await get(`/collections/${name}/items?bbox=${bboxParam()}&limit=3000&f=json`);
        group.addLayer(L.geoJSON(fc, { style, pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 6, ...style, fillOpacity: 0.6 }), interactive: name === "key_areas", onEachFeature: (f, l) => { if (name === "key_areas") l.bindTooltip(f.properties.name || t("重点区域", "Key area")); } }));
      } catch (e) { /* a layer the role may not read */ }
    };
    map.on("moveend", load);
    group.on("add", load);
    load();
  }
}

// -- events -----------------------------------------------------------------------
const filters = document.getElementById("filters");
const catSel = document.getElementById("f-category");
const statusSel = document.getElementById("f-status");
const opt = (v, zh, en) => { const o = el("option"); o.value = v; label(o, zh, en); return o; };
catSel.append(opt("", "全部", "All"), ...cfg.categories.map((c) => opt(c.code, c.zh, c.en)));
statusSel.append(opt("", "全部", "All"), opt("open", "未办结", "Open"), ...Object.entries(cfg.states).map(([k, v]) => opt(k, v.zh, v.en)));

function query(extra = {}) {
  const f = new FormData(filters);
  const q = new URLSearchParams();
  if (f.get("from")) q.set("from", f.get("from"));
  if (f.get("to")) q.set("to", f.get("to"));
  if (f.get("category")) q.set("category", f.get("category"));
  Object.entries(extra).forEach(([k, v]) => q.set(k, v));
  return q;
}

let events = [];
const detail = document.getElementById("event-detail");
async function loadEvents() {
  const q = query({ limit: "5000" });
  const status = statusSel.value;
  if (status && status !== "open") q.set("status", status);
  const doc = await get(`/events?${q}`);
  events = doc.events.filter((e) => status !== "open" || cfg.open_states.includes(e.status));
  const now = new Date();
  const layer = L.layerGroup(events.filter((e) => e.location).map((e) => {
    const open = cfg.open_states.includes(e.status);
    const late = open && e.due_at && new Date(e.due_at) < now;
    const m = L.circleMarker([e.location.lat, e.location.lon], { radius: 6, weight: 1, color: "#fff", fillOpacity: 0.9, fillColor: late ? OVERDUE_COLOUR : open ? OPEN_COLOUR : STATUS_COLOURS[e.status] || "#555" });
    m.bindTooltip(`#${e.id} ${t(e.category_name?.zh || e.category, e.category_name?.en || e.category)} · ${t(e.status_name.zh, e.status_name.en)}`);
    m.on("click", () => { showSide("events"); openEvent(e.id); });
    m.options.eventId = e.id;
    return m;
  }));
  overlay("events", "事件", "Events", layer);
  const list = document.getElementById("event-list");
  const shown = events.slice().sort((a, b) => (b.reported_at || "").localeCompare(a.reported_at || "")).slice(0, 300);
  list.replaceChildren(...shown.map((e) => {
    const li = el("li");
    const b = el("button"); b.type = "button"; b.dataset.eventId = e.id;
    const open = cfg.open_states.includes(e.status);
    const late = open && e.due_at && new Date(e.due_at) < now;
    b.append(label(el("span"), `#${e.id} ${e.category_name?.zh || e.category} · ${e.status_name.zh}`, `#${e.id} ${e.category_name?.en || e.category} · ${e.status_name.en}`));
    if (late) b.append(label(el("span", "overdue"), "超期", "Overdue"));
    b.append(label(el("span", "meta"), `${e.grid_code || ""} · ${when(e.reported_at)}`, `${e.grid_code || ""} · ${when(e.reported_at)}`));
    b.addEventListener("click", () => openEvent(e.id));
    li.append(b);
    return li;
  }));
  label(document.getElementById("event-count"), `共 ${doc.total} 条${events.length > shown.length ? `(列出最新 ${shown.length} 条)` : ""}`, `${doc.total} events${events.length > shown.length ? ` (newest ${shown.length} listed)` : ""}`);
  document.getElementById("event-count").dataset.total = String(doc.total);
}

async function openEvent(id) {
  const ev = await renderEvent(detail, id, cfg, { toast, onChange: loadEvents });
  detail.scrollIntoView({ block: "start" });
  if (ev?.location) map.setView([ev.location.lat, ev.location.lon], Math.max(map.getZoom(), 17));
}

// -- heat map and hot spots -----------------------------------------------------
async function loadHeat() {
  const res = map.getZoom() >= 15 ? 10 : 9;
  try {
    const heat = await get(`/heatmap?${query({ resolution: String(res) })}`);
    const max = Math.max(1, ...heat.features.map((f) => f.properties.count || 0));
    overlay("heat", "热力图", "Heat map", L.geoJSON(heat, {
      style: (f) => { const v = (f.properties.count || 0) / max; return { stroke: false, fillColor: `rgb(255,${Math.round(220 - 200 * v)},0)`, fillOpacity: 0.25 + 0.5 * v }; },
      onEachFeature: (f, l) => l.bindTooltip(`${t("事件", "Events")}: ${f.properties.count ?? t("过少不显示", "too few to show")}`),
    }), false);
    const hot = await get(`/hotspots?${query({ resolution: String(res) })}`);
    overlay("hotspots", "热点 (Gi*)", "Hot spots (Gi*)", L.geoJSON(hot, {
      filter: (f) => f.properties.class && f.properties.class !== "none",
      style: (f) => ({ color: "#333", weight: 0.5, fillColor: HOT[f.properties.class] || "#ccc", fillOpacity: 0.65 }),
      onEachFeature: (f, l) => l.bindTooltip(`${f.properties.class} · ${f.properties.count ?? ""}`),
    }), false);
    legend.hidden = false;
    legend.replaceChildren(
      label(el("b"), "热力图:每个六边形内事件数", "Heat: events per hexagon"),
      (() => { const d = el("div", "ramp"); d.title = `0 – ${max}`; return d; })(),
      label(el("span", "muted"), `0 – ${max}`, `0 – ${max}`),
      label(el("b"), "热点(Getis-Ord Gi*)", "Hot spots (Getis-Ord Gi*)"),
      ...Object.entries(HOT).map(([k, c]) => { const s = el("div", "key"); const sw = el("i"); sw.style.background = c; s.append(sw, document.createTextNode(k.replace("hot_", t("热点 ", "hot ")).replace("cold_", t("冷点 ", "cold ")) + "%")); return s; }),
    );
  } catch (e) { /* the role may not read aggregates */ }
}

// -- patrol routes and tracks -----------------------------------------------------
async function loadPatrol() {
  try {
    const routes = await get("/collections/patrol_routes/items?limit=500&f=json");
    overlay("routes", "巡查路线", "Patrol routes", L.geoJSON(routes, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4 }), style: { color: "#6a1b9a", weight: 3, dashArray: "6 4" } }), false);
  } catch (e) { /* none visible */ }
  try {
    const day = new Date().toISOString().slice(0, 10);
    const tracks = await get(`/patrol/tracks?date=${day}`);
    overlay("tracks", "今日轨迹", "Today's tracks", L.geoJSON(tracks, { style: { color: "#1565c0", weight: 3 }, onEachFeature: (f, l) => l.bindTooltip(`${f.properties.worker} · ${Math.round(f.properties.length_m)} m`) }), false);
  } catch (e) { /* the role may not read tracks */ }
}

// -- event security plans (安保方案, issue 21) --------------------------------------
// The stored plans of the caller's area; a chosen plan's shift routes, one colour per
// worker (the printed plan uses the same colours), and its key areas with their windows.
const WORKER_COLOURS = ["#d81b60", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab", "#c0ca33", "#546e7a"];
const hhmm = (iso, withDay = false) => {
  if (!iso) return "—";
  const o = { timeZone: cfg.time_zone || "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withDay) Object.assign(o, { month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat("zh-CN", o).format(new Date(iso));
};
const windowText = (p) => (p.valid_from || p.valid_to ? `${hhmm(p.valid_from, true)} – ${hhmm(p.valid_to, true)}` : t("长期", "permanent"));
let plan = null;
async function loadPlans() {
  const list = document.getElementById("plan-list");
  const count = document.getElementById("plan-count");
  let plans = [];
  try { plans = (await get("/patrol/plans")).plans; } catch (e) {
    label(count, `无法查看安保方案:${e.message}`, `Cannot read event plans: ${e.message}`);
    document.querySelector(".side-tabs button[data-side=plans]").hidden = e.status === 403;
    return;
  }
  label(count, `共 ${plans.length} 个安保方案`, `${plans.length} event plan${plans.length === 1 ? "" : "s"}`);
  count.dataset.total = String(plans.length);
  list.replaceChildren(...plans.map((p) => {
    const li = el("li"); const b = el("button"); b.type = "button"; b.dataset.planId = p.id;
    b.append(document.createTextNode(`#${p.id} ${p.name || ""}`));
    const state = p.complete ? t("全部可满足", "complete") : t(`${p.visits_unmet} 次到访无法满足`, `${p.visits_unmet} visits unmet`);
    b.append(label(el("span", "meta"), `${p.area_code} · ${hhmm(p.start, true)}–${hhmm(p.end)} · ${p.workers} 人 · ${state}`, `${p.area_code} · ${hhmm(p.start, true)}–${hhmm(p.end)} · ${p.workers} workers · ${state}`));
    b.addEventListener("click", () => showPlan(p.id));
    li.append(b); return li;
  }));
}

async function showPlan(id) {
  const doc = await get(`/patrol/plans/${id}`);
  plan = doc;
  const workers = [...new Set(doc.routes.features.map((f) => f.properties.worker))];
  const colour = (w) => WORKER_COLOURS[workers.indexOf(w) % WORKER_COLOURS.length];
  const group = L.featureGroup();
  const areas = L.geoJSON(doc.key_areas, {
    style: { color: "#6a1b9a", weight: 2, fillColor: "#ce93d8", fillOpacity: 0.35 },
    pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 7, color: "#6a1b9a", fillColor: "#ce93d8", fillOpacity: 0.8 }),
    onEachFeature: (f, l) => {
      const p = f.properties;
      l.options.keyArea = f.id;
      l.bindTooltip(`${esc(p.name || `#${f.id}`)}${p.synthetic ? t("(合成数据)", " (synthetic)") : ""}<br>${esc(t("时段", "Window"))}: ${esc(windowText(p))}${p.frequency_min ? `<br>${esc(t(`每 ${p.frequency_min} 分钟巡查,停留 ${p.dwell_min ?? "—"} 分钟`, `every ${p.frequency_min} min, dwell ${p.dwell_min ?? "—"} min`))}` : ""}`);
    },
  });
  group.addLayer(areas);
  const routeLayers = [];
  for (const f of doc.routes.features) {
    const p = f.properties;
    const c = colour(p.worker);
    const line = L.geoJSON(f, { style: { color: c, weight: 4, opacity: 0.9 } });
    line.eachLayer((l) => { l.options.worker = p.worker; l.options.shift = p.shift; l.bindTooltip(`${esc(p.worker)} · ${esc(t(`第${p.shift}班`, `shift ${p.shift}`))} · ${Math.round(p.length_m)} m`); routeLayers.push(l); });
    group.addLayer(line);
    const seen = new Map();
    (p.timetable || []).filter((v) => v.type === "visit").forEach((v, i) => {
      const k = `${v.lon},${v.lat}`;
      if (!seen.has(k)) seen.set(k, { v, n: [] });
      seen.get(k).n.push(i + 1);
    });
    for (const { v, n } of seen.values()) {
      const icon = L.divIcon({ className: "plan-stop", html: `<span style="background:${c}">${n.join("·")}</span>`, iconSize: null });
      group.addLayer(L.marker([v.lat, v.lon], { icon, keyboard: false }).bindTooltip(`${esc(p.worker)}: ${esc(v.name || "")} ${n.map((j) => hhmm(p.timetable.filter((x) => x.type === "visit")[j - 1].arrive)).join(", ")}`));
    }
  }
  overlay("plan", "安保方案", "Event plan", group);
  const b = group.getBounds();
  if (b.isValid()) map.fitBounds(b, { padding: [30, 30] });
  const box = document.getElementById("plan-detail");
  box.hidden = false;
  box.dataset.planId = String(doc.id);
  document.getElementById("pd-title").textContent = `#${doc.id} ${doc.name || ""}`.trim();
  label(document.getElementById("pd-window"), `区域 ${doc.area_code} · ${hhmm(doc.start, true)} – ${hhmm(doc.end, true)}`, `Area ${doc.area_code} · ${hhmm(doc.start, true)} – ${hhmm(doc.end, true)}`);
  document.getElementById("pd-pdf").href = `/patrol/plans/${doc.id}/print.pdf`;
  const crsSel = document.getElementById("pd-crs");
  const fill = () => document.getElementById("pd-workers").replaceChildren(...doc.routes.features.map((f) => {
    const p = f.properties;
    const li = el("li"); li.dataset.worker = p.worker; li.dataset.shift = String(p.shift); li.dataset.colour = colour(p.worker);
    const sw = el("i", "swatch"); sw.style.background = colour(p.worker);
    const a = el("a"); a.className = "button"; a.textContent = "GPX";
    a.href = `/patrol/plans/${doc.id}/routes?worker=${encodeURIComponent(p.worker)}&shift=${p.shift}&crs=${crsSel.value}`;
    a.download = `plan-${doc.id}-${p.shift}.gpx`;
    li.append(sw, document.createTextNode(`${p.worker} · ${t(`第${p.shift}班`, `shift ${p.shift}`)}`), a);
    li.append(label(el("span", "meta"), `${hhmm(p.valid_from)}–${hhmm(p.valid_to)} · ${p.visits} 次到访 · ${(p.length_m / 1000).toFixed(1)} km · ${Math.round(p.work_min)} 分钟`, `${hhmm(p.valid_from)}–${hhmm(p.valid_to)} · ${p.visits} visits · ${(p.length_m / 1000).toFixed(1)} km · ${Math.round(p.work_min)} min`));
    return li;
  }));
  crsSel.onchange = fill;
  fill();
  document.getElementById("pd-areas").replaceChildren(...doc.key_areas.features.map((f) => {
    const p = f.properties;
    const li = el("li"); li.dataset.keyArea = String(f.id); li.dataset.window = windowText(p);
    li.append(label(el("span"), `${p.name || `#${f.id}`}${p.synthetic ? "(合成数据)" : ""}`, `${p.name || `#${f.id}`}${p.synthetic ? " (synthetic)" : ""}`));
    li.append(label(el("span", "meta"), `时段 ${windowText(p)}${p.frequency_min ? ` · 每 ${p.frequency_min} 分钟 · 停留 ${p.dwell_min ?? "—"} 分钟` : ""}`, `Window ${windowText(p)}${p.frequency_min ? ` · every ${p.frequency_min} min · dwell ${p.dwell_min ?? "—"} min` : ""}`));
    return li;
  }));
  const unmet = doc.unmet.length;
  label(document.getElementById("pd-unmet"), unmet ? `${unmet} 项无法满足(人员不足或距离过远),见打印方案末页` : "全部到访与街道均已安排", unmet ? `${unmet} items cannot be met (not enough people or too far): see the printed plan's last page` : "Every visit and street is planned");
  window.gridmapConsole.plan = { id: doc.id, routes: routeLayers, areas, workers, colours: workers.map(colour) };
  box.dataset.ready = "1";
}

// -- side panels ------------------------------------------------------------------
function showSide(name) {
  document.querySelectorAll(".side-panel").forEach((p) => { p.hidden = p.id !== `side-${name}`; });
  document.querySelectorAll(".side-tabs button").forEach((b) => b.classList.toggle("active", b.dataset.side === name));
}
document.querySelectorAll(".side-tabs button").forEach((b) => b.addEventListener("click", () => showSide(b.dataset.side)));

function fillGridList() {
  const text = document.getElementById("grid-search").value.trim().toLowerCase();
  const hits = grids.features.filter((f) => !text || `${f.properties.name || ""} ${f.properties.code}`.toLowerCase().includes(text));
  document.getElementById("grid-list").replaceChildren(...hits.slice(0, 200).map((f) => {
    const li = el("li"); const b = el("button"); b.type = "button"; b.dataset.grid = f.properties.code;
    b.append(document.createTextNode(`${f.properties.name || ""} ${f.properties.code}`));
    b.append(label(el("span", "meta"), `${f.properties.households ?? "—"} 户 · ${f.properties.buildings ?? "—"} 栋`, `${f.properties.households ?? "—"} households · ${f.properties.buildings ?? "—"} buildings`));
    b.addEventListener("click", () => { const l = L.geoJSON(f); map.fitBounds(l.getBounds(), { maxZoom: 18 }); showGrid(f); });
    li.append(b); return li;
  }));
  const n = hits.length;
  label(document.getElementById("grid-count"), `找到 ${n} 个网格`, `${n} grid${n === 1 ? "" : "s"} found`);
}
document.getElementById("grid-search").addEventListener("input", fillGridList);

// One grid: its workers, and (for coordinators) assigning a grid worker to it.
let currentGrid = null;
const gdMsg = document.getElementById("gd-msg");
async function showGrid(f) {
  currentGrid = f.properties.code;
  const box = document.getElementById("grid-detail");
  box.hidden = false;
  box.dataset.grid = currentGrid;
  document.getElementById("gd-title").textContent = `${f.properties.name || ""} ${currentGrid}`.trim();
  const list = document.getElementById("gd-workers");
  let rows = [];
  try { rows = (await get(`/workers?area=${currentGrid}`)).workers; } catch (e) { label(gdMsg, `无法读取网格员:${e.message}`, `Cannot read workers: ${e.message}`); }
  list.replaceChildren(...rows.map((w) => {
    const li = el("li", "worker"); li.dataset.worker = w.name || "";
    li.append(document.createTextNode(`${w.name || "—"}${w.account ? "" : t("(未开通账号)", " (no account)")}`));
    if (w.account) {
      const x = el("button"); x.type = "button"; label(x, "取消分配", "Unassign");
      x.addEventListener("click", async () => {
        try { await call("DELETE", `/workers/${encodeURIComponent(w.name)}/grids/${currentGrid}`); toast(t("已取消分配", "Unassigned")); showGrid(f); }
        catch (e) { label(gdMsg, `失败:${e.message}`, `Failed: ${e.message}`); }
      });
      li.append(" ", x);
    }
    return li;
  }));
  if (!rows.length) list.replaceChildren(label(el("li", "muted"), "尚无网格员", "No worker yet"));
}
document.getElementById("gd-assign").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = new FormData(ev.target).get("user").trim();
  try {
    await call("POST", `/workers/${encodeURIComponent(user)}/grids`, { json: { grids: [currentGrid] } });
    label(gdMsg, `已将 ${user} 分配到网格 ${currentGrid}`, `${user} now works grid ${currentGrid}`);
    ev.target.reset();
    showGrid(grids.features.find((g) => g.properties.code === currentGrid));
  } catch (e) { label(gdMsg, `分配失败:${e.message}`, `Cannot assign: ${e.message}`); }
});

let route = null;
document.getElementById("route-plan").addEventListener("click", async () => {
  const grid = document.getElementById("route-grid").value;
  const mode = document.getElementById("route-mode").value;
  const crs = document.getElementById("route-crs").value;
  const info = document.getElementById("route-info");
  label(info, "正在规划…", "Planning…");
  try {
    const { data } = await call("POST", "/patrol/routes", { json: { grid, mode } });
    route = data;
    overlay("planned", "规划路线", "Planned route", L.geoJSON(data, { style: { color: "#d500f9", weight: 5, opacity: 0.85 } }));
    map.fitBounds(L.geoJSON(data).getBounds(), { padding: [30, 30] });
    const len = data.properties.length_m;
    label(info, `路线 ${Math.round(len)} 米,约 ${Math.round(len / 80)} 分钟步行`, `Route ${Math.round(len)} m, about ${Math.round(len / 80)} min on foot`);
    info.dataset.length = String(len);
    const links = document.getElementById("route-links");
    links.hidden = false;
    for (const fmt of ["gpx", "kml"]) {
      const a = document.getElementById(`route-${fmt}`);
      a.dataset.href = `/patrol/routes?format=${fmt}&crs=${crs}`;
      a.dataset.body = JSON.stringify({ grid, mode });
      a.href = "#";
    }
    document.getElementById("route-print").href = `/console/route-sheet?grid=${grid}&mode=${mode}`;
    const steps = document.getElementById("route-steps");
    const lines = (data.properties.steps || []).map((s) => t(s.zh, s.en));
    (data.properties.stops || []).forEach((s, i) => lines.push(t(`第 ${i + 1} 站:${s.name || s.label || s.kind || ""}`, `Stop ${i + 1}: ${s.name || s.label || s.kind || ""}`)));
    steps.replaceChildren(...lines.map((text) => { const li = el("li"); li.textContent = text; return li; }));
  } catch (e) { label(info, `无法规划:${e.message}`, `Cannot plan: ${e.message}`); }
});
for (const fmt of ["gpx", "kml"]) {
  document.getElementById(`route-${fmt}`).addEventListener("click", async (ev) => {
    ev.preventDefault();
    const a = ev.currentTarget;
    const resp = await fetch(a.dataset.href, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content }, body: a.dataset.body });
    if (!resp.ok) { toast(t("导出失败", "Export failed")); return; }
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a"); link.href = url; link.download = `route-${document.getElementById("route-grid").value}.${fmt}`;
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}

filters.addEventListener("submit", (ev) => { ev.preventDefault(); loadEvents(); loadHeat(); });

async function refreshAll() {
  await loadGrids();
  loadContext();
  await loadEvents();
  loadHeat();
  loadPatrol();
  loadPlans();
}
refreshAll().then(() => { document.body.dataset.ready = "1"; });
window.gridmapConsole = { map, cfg, overlays, loadEvents, loadPlans, showPlan, plan: null };
