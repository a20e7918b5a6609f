// 敲门行动: the campaign's households of my grid on the map and in a list; a visit
// (result, data correct, residents changed, satisfied, note) is recorded where the
// worker stands, through the outbox like reports.
import { get } from "./api.js";
import { newKey } from "./db.js";
import { t, label } from "./i18n.js";
import { position, showPoints } from "./map.js";
import { enqueue, flush } from "./outbox.js";

export function initKnock(cfg, app) {
  const sel = document.getElementById("k-campaign");
  const list = document.getElementById("k-list");
  const form = document.getElementById("k-form");
  const title = document.getElementById("k-title");
  const progress = document.getElementById("k-progress");
  let households = [];
  let visited = new Set();
  let current = null;
  let centroids = {};

  async function buildingCentroids(ids) {
    const want = ids.filter((id) => id != null && !(id in centroids));
    if (!want.length) return;
    try {
      const bb = window.L.geoJSON(cfg.grids).getBounds();
      const fc = await get(`/collections/buildings/items?bbox=${[bb.getWest(), bb.getSouth(), bb.getEast(), bb.getNorth()].map((v) => v.toFixed(6)).join(",")}&limit=5000&f=json`);
      fc.features.forEach((f) => { const c = window.L.geoJSON(f).getBounds().getCenter(); centroids[f.id] = { lon: c.lng, lat: c.lat }; });
    } catch (e) { /* offline and never loaded: list only */ }
  }

  function draw() {
    const pts = households.map((h) => ({ ...h, ...(centroids[h.building_id] || {}) })).filter((h) => h.lon != null);
    showPoints("households", pts.map((h) => ({ ...h, label: `${h.household_no || h.id} ${h.address || ""}` })), (h) => ({ radius: 7, color: "#fff", weight: 2, fillOpacity: 0.95, fillColor: visited.has(h.id) ? "#0b6e2e" : "#f39c12" }), (h) => { app.show("knock"); openForm(h); });
    list.replaceChildren(...households.map((h) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.dataset.householdId = h.id;
      b.textContent = `${h.household_no || "#" + h.id} · ${h.address || ""}`;
      const meta = document.createElement("span"); meta.className = "meta " + (visited.has(h.id) ? "done" : "");
      label(meta, visited.has(h.id) ? "已走访" : "未走访", visited.has(h.id) ? "Visited" : "Not visited");
      b.append(meta);
      b.addEventListener("click", () => openForm(h));
      li.append(b);
      return li;
    }));
    label(progress, `本机已走访 ${visited.size} / ${households.length} 户(已登记)`, `Visited here ${visited.size} / ${households.length} registered households`);
    serverProgress();
  }

  async function serverProgress() {
    if (!sel.value) return;
    try {
      const p = await get(`/doorknock/campaigns/${sel.value}/progress?by=grid`);
      const rows = (p.units || []).filter((r) => cfg.grids.features.some((f) => f.properties.code === String(r.grid)));
      if (!rows.length) return;
      const pct = rows.reduce((s, r) => s + (Number(r.visited) || 0), 0);
      const est = rows.reduce((s, r) => s + (Number(r.households) || 0), 0);
      if (est) label(progress, `进度 ${pct} / ${est} 户(${((100 * pct) / est).toFixed(1)} %)`, `Progress ${pct} / ${est} households (${((100 * pct) / est).toFixed(1)} %)`);
    } catch (e) { /* offline: the local count stays */ }
  }

  function openForm(h) {
    current = h;
    form.hidden = false;
    label(title, `走访 ${h.household_no || "#" + h.id}`, `Visit ${h.household_no || "#" + h.id}`);
    form.scrollIntoView({ block: "start" });
  }

  async function load() {
    let camps = [];
    try { camps = (await get("/doorknock/campaigns")).campaigns; } catch (e) { return; }
    const now = Date.now();
    const active = camps.filter((c) => Date.parse(c.starts_at) <= now && now < Date.parse(c.ends_at));
    sel.replaceChildren(...(active.length ? active : camps).map((c) => { const o = document.createElement("option"); o.value = c.id; o.textContent = c.name; return o; }));
    sel.hidden = !sel.value;
    if (!sel.value) { label(progress, "当前没有敲门行动", "No campaign at present"); return; }
    try {
      households = [];
      for (const f of cfg.grids.features) households.push(...(await get(`/registry/households?grid=${f.properties.code}&limit=1000`)).households);
    } catch (e) { households = []; }
    await buildingCentroids(households.map((h) => h.building_id));
    draw();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current) return;
    const fd = new FormData(form);
    const here = position.lon != null ? position : centroids[current.building_id];
    if (!here) { app.toast(t("无法定位:请开启定位", "No position: turn location on")); return; }
    const changed = fd.get("residents_changed") ? "[人员有变动 residents changed] " : "";
    const body = {
      household_id: current.id,
      status: fd.get("status"),
      at: new Date().toISOString(),
      location: { type: "Point", coordinates: [+here.lon.toFixed(7), +here.lat.toFixed(7)] },
      crs: "wgs84",
      data_correct: fd.get("data_correct") ? !fd.get("residents_changed") : false,
      satisfied: fd.get("satisfied") ? true : null,
      note: (changed + (fd.get("note") || "")).trim() || null,
    };
    await enqueue({ kind: "visit", key: newKey(), campaign: Number(sel.value), body });
    visited.add(current.id);
    form.reset(); form.hidden = true; current = null;
    draw();
    app.toast(t("走访已记录", "Visit recorded"));
    await flush(app.sent);
  });
  document.getElementById("k-cancel").addEventListener("click", () => { form.hidden = true; current = null; });
  sel.addEventListener("change", load);

  return { load, sent(item) { if (item.kind === "visit") visited.add(item.body.household_id); } };
}
