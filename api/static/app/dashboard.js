// The leader's dashboard: figures are rendered by the server; this draws the heat
// map of the period for the caller's area and switches the language.
import { get } from "./api.js";
import { apply, toggle } from "./i18n.js";

const L = window.L;
const cfg = JSON.parse(document.getElementById("gm-config").textContent);
document.getElementById("lang").addEventListener("click", toggle);
apply();

// The "to" date shown is inclusive; the query's end is the day after.
document.querySelector("form.period").addEventListener("submit", (ev) => {
  const to = ev.target.querySelector("input[name=to]");
  if (to.value) { const d = new Date(`${to.value}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1); to.value = d.toISOString().slice(0, 10); }
});

const map = L.map("heat-map", { preferCanvas: true, attributionControl: false, zoomControl: true });
(async () => {
  try {
    const grids = await get("/collections/grids/items?limit=2000&f=json");
    const g = L.geoJSON(grids, { style: { color: "#12395e", weight: 1, fillOpacity: 0 } }).addTo(map);
    if (g.getBounds().isValid()) map.fitBounds(g.getBounds());
    const q = new URLSearchParams({ resolution: "9", from: cfg.period.from, to: cfg.period.to });
    const heat = await get(`/heatmap?${q}`);
    const max = Math.max(1, ...heat.features.map((f) => f.properties.count || 0));
    L.geoJSON(heat, {
      style: (f) => { const v = (f.properties.count || 0) / max; return { stroke: false, fillColor: `rgb(255,${Math.round(220 - 200 * v)},0)`, fillOpacity: 0.3 + 0.5 * v }; },
      onEachFeature: (f, l) => l.bindTooltip(String(f.properties.count ?? "")),
    }).addTo(map);
  } catch (e) { /* no aggregates for this role */ }
  document.body.dataset.ready = "1";
})();
