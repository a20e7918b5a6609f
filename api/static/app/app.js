// 网格通: wiring of the phone app. The page carries its start-up data (gm-config);
// modules talk to the same HTTP API as every other client, with the session cookie
// and the page's CSRF token. Offline: the service worker serves the shell and what
// was last fetched; writes wait in the outbox (IndexedDB) and go when the network is back.
import { apply, label, t, toggle } from "./i18n.js";
import { initMap, map } from "./map.js";
import { flush, onChange, dismiss, pending } from "./outbox.js";
import { initReport } from "./report.js";
import { initTasks } from "./tasks.js";
import { initPatrol } from "./patrol.js";
import { initKnock } from "./knock.js";

const cfg = JSON.parse(document.getElementById("gm-config").textContent);
const toastEl = document.getElementById("toast");
const whereEl = document.getElementById("where");
let picking = null;
const modules = [];

const app = {
  show(name) {
    document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== `tab-${name}`; });
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    if (name === "map" && map) setTimeout(() => map.invalidateSize(), 0);
    document.body.dataset.tab = name;
  },
  toast(text) {
    toastEl.textContent = text; toastEl.hidden = false;
    clearTimeout(app._tt); app._tt = setTimeout(() => { toastEl.hidden = true; }, 3500);
  },
  pick(prompt, fn) {
    picking = fn;
    document.body.classList.add("picking");
    whereEl.textContent = prompt;
  },
  sent(item, answer) { modules.forEach((m) => m.sent && m.sent(item, answer)); },
};

document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => app.show(b.dataset.tab)));
document.getElementById("lang").addEventListener("click", toggle);
apply();

const located = initMap(cfg, whereEl);
document.getElementById("locate").addEventListener("click", () => located.locate());
map.on("click", (e) => {
  if (!picking) return;
  const fn = picking; picking = null;
  document.body.classList.remove("picking");
  fn(e.latlng);
});

modules.push(initReport(cfg, app));
const tasks = initTasks(cfg, app);
modules.push(tasks);
modules.push(initPatrol(cfg, app));
const knock = initKnock(cfg, app);
modules.push(knock);

// Network state and the outbox badge (待发送 N).
const net = document.getElementById("net");
const box = document.getElementById("outbox");
function showNet() {
  const on = navigator.onLine;
  net.className = `pill ${on ? "ok" : "off"}`;
  label(net, on ? "在线" : "离线", on ? "Online" : "Offline");
}
onChange((items) => {
  const waiting = items.filter((i) => !i.refused).length;
  const refused = items.filter((i) => i.refused);
  box.hidden = items.length === 0;
  label(box, `待发送 ${waiting}${refused.length ? ` · 被拒 ${refused.length}` : ""}`, `Waiting ${waiting}${refused.length ? ` · refused ${refused.length}` : ""}`);
  box.dataset.waiting = String(waiting);
  box.title = refused.map((i) => i.lastError).join("\n");
});
box.addEventListener("click", async () => {
  const items = await pending();
  const refused = items.filter((i) => i.refused);
  if (refused.length && confirm(t(`有 ${refused.length} 条被服务器拒绝:\n${refused.map((i) => i.lastError).join("\n")}\n删除这些记录?`, `${refused.length} refused by the server:\n${refused.map((i) => i.lastError).join("\n")}\nDelete them?`))) {
    for (const i of refused) await dismiss(i.id);
  } else { await sync(); }
});

async function sync() {
  await flush(app.sent);
  if (navigator.onLine) { tasks.refresh(); }
}
window.addEventListener("online", () => { showNet(); sync(); });
window.addEventListener("offline", showNet);
document.addEventListener("visibilitychange", () => { if (!document.hidden) sync(); });
setInterval(() => { if (navigator.onLine) flush(app.sent); }, 15000);
showNet();
pending();
tasks.refresh();
knock.load();
sync();

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
}
window.gridmapApp = { app, cfg, sync, pending };

// Sign-out wipes what the service worker kept of this worker's data.
document.querySelector("form[action$='/logout']").addEventListener("submit", () => {
  navigator.serviceWorker?.controller?.postMessage("logout");
});
performance.mark("gridmap-ready");
