// The A4 route sheet: the route planned for a grid, on a map and as a turn list.
import { call } from "./api.js";

const L = window.L;
const cfg = JSON.parse(document.getElementById("gm-config").textContent);
document.getElementById("printed").textContent = new Date().toLocaleString("zh-CN", { hour12: false });
document.getElementById("print").addEventListener("click", () => window.print());

(async () => {
  const map = L.map("sheet-map", { zoomControl: false, attributionControl: false, preferCanvas: false });
  const { data } = await call("POST", "/patrol/routes", { json: { grid: cfg.grid, mode: cfg.mode } });
  const bb = L.geoJSON(data).getBounds();
  const q = [bb.getWest(), bb.getSouth(), bb.getEast(), bb.getNorth()].map((v) => v.toFixed(6)).join(",");
  try {
    const roads = await call("GET", `/collections/roads/items?bbox=${q}&limit=3000&f=json`);
    L.geoJSON(roads.data, { style: { color: "#9e9e9e", weight: 1.5 } }).addTo(map);
  } catch (e) { /* the route alone */ }
  const line = L.geoJSON(data, { style: { color: "#d500f9", weight: 5 } }).addTo(map);
  map.fitBounds(line.getBounds(), { padding: [15, 15] });
  const coords = data.geometry.type === "LineString" ? data.geometry.coordinates : data.geometry.coordinates.flat();
  if (coords.length) {
    L.circleMarker([coords[0][1], coords[0][0]], { radius: 8, color: "#1b5e20", fillOpacity: 1 }).bindTooltip("起点 Start", { permanent: true }).addTo(map);
  }
  const len = data.properties.length_m;
  document.getElementById("sheet-summary").textContent = `全长 ${Math.round(len)} 米,步行约 ${Math.round(len / 80)} 分钟 · Length ${Math.round(len)} m, about ${Math.round(len / 80)} min on foot`;
  const steps = (data.properties.steps || []).map((s) => `${s.zh} · ${s.en}`);
  // A key-area route lists its stops in visiting order.
  const stops = (data.properties.stops || []).map((s, i) => `到达第 ${i + 1} 站 Stop ${i + 1}: ${s.name || s.label || s.kind || ""}${s.dwell_min ? ` · 停留 ${s.dwell_min} 分钟 / dwell ${s.dwell_min} min` : ""}`);
  document.getElementById("sheet-steps").replaceChildren(...[...steps, ...stops].map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  document.body.dataset.ready = "1";
})();
