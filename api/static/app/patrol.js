// 巡查: start and stop a patrol. While on, every position the phone gives is kept in
// IndexedDB (so a reload, a dead battery saver or no network loses nothing); at the
// end the points go to /patrol/tracks as one GeoJSON track through the outbox. The
// planned route of the grid, today's uploaded tracks and the measured coverage are shown.
import { call, get } from "./api.js";
import { newKey, points, state } from "./db.js";
import { t, label } from "./i18n.js";
import { onPosition, showLine } from "./map.js";
import { enqueue, flush } from "./outbox.js";

const R = 6371008.8;
function metres(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}
const today = () => new Date().toISOString().slice(0, 10);

export function initPatrol(cfg, app) {
  const gridSel = document.getElementById("p-grid");
  const start = document.getElementById("p-start");
  const stop = document.getElementById("p-stop");
  const nPts = document.getElementById("p-points");
  const dist = document.getElementById("p-dist");
  const cov = document.getElementById("p-coverage");
  const msg = document.getElementById("p-msg");
  let on = false;
  let last = null;
  let total = 0;
  let count = 0;
  const live = [];

  cfg.grids.features.forEach((f) => { const o = document.createElement("option"); o.value = f.properties.code; o.textContent = `${f.properties.name || ""} ${f.properties.code}`.trim(); gridSel.append(o); });

  const render = () => {
    nPts.textContent = String(count);
    dist.textContent = `${Math.round(total)} m`;
    start.hidden = on; stop.hidden = !on; gridSel.disabled = on;
    showLine("live", live.length > 1 ? { type: "LineString", coordinates: live } : null, "#1a73e8");
  };

  onPosition(async (p) => {
    if (!on) return;
    const fix = { lon: p.lon, lat: p.lat, accuracy: p.accuracy, time: new Date(p.at || Date.now()).toISOString() };
    if (last && metres(last, fix) < 3 && Date.parse(fix.time) - Date.parse(last.time) < 15000) return;
    if (last) total += metres(last, fix);
    last = fix; count += 1; live.push([fix.lon, fix.lat]);
    await points.add(fix);
    render();
  });

  async function coverage(grid) {
    try {
      const tracks = await get(`/patrol/tracks?grid=${grid}&date=${today()}`);
      showLine("covered", tracks.features.length ? tracks : null, "#0b6e2e");
      const c = await get(`/patrol/coverage?grid=${grid}&date=${today()}`);
      const share = c.total?.coverage;
      cov.textContent = share == null ? "–" : `${(share * 100).toFixed(1)} %`;
      cov.dataset.coverage = share == null ? "" : String(share);
    } catch (e) { /* offline: keep the last figure */ }
  }

  start.addEventListener("click", async () => {
    on = true; last = null; total = 0; count = 0; live.length = 0;
    await points.clear();
    await state.set("patrol", { grid: gridSel.value, started: Date.now() });
    label(msg, "巡查中:位置会保存在手机上", "Patrolling: positions are kept on the phone");
    render();
  });

  stop.addEventListener("click", async () => {
    on = false;
    const fixes = await points.all();
    const grid = gridSel.value;
    await state.del("patrol");
    render();
    if (fixes.length < 2) { label(msg, "点数太少,未上传", "Too few points: nothing uploaded"); return; }
    const track = { type: "FeatureCollection", features: fixes.map((f) => ({ type: "Feature", geometry: { type: "Point", coordinates: [f.lon, f.lat] }, properties: { time: f.time, accuracy: f.accuracy } })) };
    await enqueue({ kind: "track", key: newKey(), body: { grid, crs: "wgs84", format: "geojson", track } });
    await points.clear();
    label(msg, "轨迹已保存,待上传…", "Track saved, waiting to upload…");
    await flush(app.sent);
  });

  document.getElementById("p-route").addEventListener("click", async () => {
    label(msg, "正在规划…", "Planning…");
    try {
      const { data } = await call("POST", "/patrol/routes", { json: { grid: gridSel.value, mode: "streets" } });
      showLine("route", data, "#8e44ad", "8 6");
      const len = data.properties?.length_m;
      label(msg, `计划路线 ${len ? Math.round(len) + " 米" : ""}(紫色虚线)`, `Planned route ${len ? Math.round(len) + " m" : ""} (purple dashes)`);
      app.show("map");
    } catch (e) { label(msg, `无法规划:${e.message}`, `Cannot plan: ${e.message}`); }
  });

  gridSel.addEventListener("change", () => coverage(gridSel.value));

  (async () => {
    const running = await state.get("patrol");
    if (running) {
      gridSel.value = running.grid; on = true;
      const fixes = await points.all();
      fixes.forEach((f) => { if (last) total += metres(last, f); last = f; live.push([f.lon, f.lat]); });
      count = fixes.length;
    }
    render();
    if (gridSel.value) coverage(gridSel.value);
  })();

  return {
    sent(item, answer) {
      if (item.kind !== "track") return;
      label(msg, `轨迹已上传(${answer.point_count ?? ""} 点)`, `Track uploaded (${answer.point_count ?? ""} points)`);
      coverage(item.body.grid);
    },
  };
}
