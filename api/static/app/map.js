// The worker's map: grids, buildings, roads, key areas, open events; "locate me"
// with its accuracy circle; which grid the worker stands in. Leaflet (window.L) is
// served by gridmap itself: no tile server, no internet.
import { get } from "./api.js";
import { t } from "./i18n.js";

const L = window.L;
export let map;
const layers = {};
let me = null;
let meCircle = null;
export const position = { lon: null, lat: null, accuracy: null, at: null };
const listeners = new Set();

export function onPosition(fn) { listeners.add(fn); }

function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function inPolygon(x, y, rings) {
  return inRing(x, y, rings[0]) && !rings.slice(1).some((h) => inRing(x, y, h));
}

// Point in one of my grids (client side, for the banner only: the server decides on reports).
export function gridAt(cfg, lon, lat) {
  for (const f of cfg.grids.features) {
    const g = f.geometry;
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    if (polys.some((p) => inPolygon(lon, lat, p))) return f.properties.code;
  }
  return null;
}

function bboxOf(fc) {
  const b = L.geoJSON(fc).getBounds();
  return b.isValid() ? b : null;
}

async function loadLayer(name, bounds, style, limit = 3000) {
  const bb = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(6)).join(",");
  try {
    const fc = await get(`/collections/${name}/items?bbox=${bb}&limit=${limit}&f=json`);
    if (layers[name]) layers[name].remove();
    layers[name] = L.geoJSON(fc, { style, interactive: name === "key_areas", pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, ...style }) });
    if (name === "key_areas") layers[name].bindTooltip((l) => l.feature.properties.name || t("重点区域", "Key area"));
    layers[name].addTo(map);
    if (layers.grids) layers.grids.bringToFront();
  } catch (e) { /* offline with nothing cached: the grid outline is still drawn */ }
}

export function eventMarkers(events, onClick) {
  if (layers.events) layers.events.remove();
  const urgentColour = { normal: "#d35400", urgent: "#c0392b", critical: "#7b0000" };
  layers.events = L.layerGroup(events.filter((e) => e.location).map((e) => {
    const m = L.circleMarker([e.location.lat, e.location.lon], { radius: 9, color: "#fff", weight: 2, fillColor: urgentColour[e.urgency] || "#d35400", fillOpacity: 0.95 });
    m.bindTooltip(`#${e.id} ${t(e.category_name?.zh || e.category, e.category_name?.en || e.category)} · ${t(e.status_name.zh, e.status_name.en)}`);
    if (onClick) m.on("click", () => onClick(e));
    return m;
  }));
  layers.events.addTo(map);
}

export function showLine(name, geojson, colour, dash) {
  if (layers[name]) layers[name].remove();
  if (!geojson) return;
  layers[name] = L.geoJSON(geojson, { style: { color: colour, weight: 5, opacity: 0.85, dashArray: dash || null }, interactive: false }).addTo(map);
}

export function showPoints(name, features, style, onClick) {
  if (layers[name]) layers[name].remove();
  layers[name] = L.layerGroup(features.map((f) => {
    const m = L.circleMarker([f.lat, f.lon], style(f));
    if (f.label) m.bindTooltip(f.label);
    if (onClick) m.on("click", () => onClick(f));
    return m;
  })).addTo(map);
}

export function initMap(cfg, whereEl) {
  map = L.map("map", { zoomControl: true, attributionControl: false, preferCanvas: true });
  L.control.attribution({ position: "topright", prefix: "gridmap · Leaflet · © OpenStreetMap" }).addTo(map);
  layers.grids = L.geoJSON(cfg.grids, {
    style: { color: "#12395e", weight: 3, fillOpacity: 0.04 },
    onEachFeature: (f, l) => l.bindTooltip(`${f.properties.name || ""} ${f.properties.code}`, { sticky: true }),
  }).addTo(map);
  const bounds = bboxOf(cfg.grids);
  if (bounds) {
    map.fitBounds(bounds, { padding: [10, 10] });
    const wide = bounds.pad(0.15);
    loadLayer("roads", wide, { color: "#8a8a8a", weight: 2 });
    loadLayer("buildings", wide, { color: "#7a5c3a", weight: 1, fillColor: "#c9b79c", fillOpacity: 0.6 });
    loadLayer("key_areas", wide, { color: "#8e44ad", weight: 2, fillOpacity: 0.15 });
  } else {
    map.setView([0, 0], 2);
  }
  const update = (pos) => {
    const { longitude: lon, latitude: lat, accuracy } = pos.coords;
    Object.assign(position, { lon, lat, accuracy, at: pos.timestamp });
    const ll = [lat, lon];
    if (!me) {
      me = L.circleMarker(ll, { radius: 8, color: "#fff", weight: 3, fillColor: "#1a73e8", fillOpacity: 1 }).addTo(map);
      meCircle = L.circle(ll, { radius: accuracy, color: "#1a73e8", weight: 1, fillOpacity: 0.12, interactive: false }).addTo(map);
    } else { me.setLatLng(ll); meCircle.setLatLng(ll).setRadius(accuracy); }
    const code = gridAt(cfg, lon, lat);
    whereEl.dataset.zh = code ? `您在网格 ${code} 内(精度 ±${Math.round(accuracy)} 米)` : `不在您的网格内(精度 ±${Math.round(accuracy)} 米)`;
    whereEl.dataset.en = code ? `You are in grid ${code} (±${Math.round(accuracy)} m)` : `Outside your grids (±${Math.round(accuracy)} m)`;
    whereEl.textContent = t(whereEl.dataset.zh, whereEl.dataset.en);
    whereEl.dataset.grid = code || "";
    listeners.forEach((fn) => fn(position));
  };
  const fail = (err) => {
    whereEl.dataset.zh = `无法定位:${err.message || err.code}`;
    whereEl.dataset.en = `No position: ${err.message || err.code}`;
    whereEl.textContent = t(whereEl.dataset.zh, whereEl.dataset.en);
  };
  if ("geolocation" in navigator) {
    navigator.geolocation.watchPosition(update, fail, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  }
  return {
    locate() {
      navigator.geolocation.getCurrentPosition((p) => { update(p); map.setView([p.coords.latitude, p.coords.longitude], Math.max(map.getZoom(), 17)); }, fail, { enableHighAccuracy: true, timeout: 15000 });
    },
  };
}
