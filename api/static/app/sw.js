// 网格通 service worker (scope /app/): the shell, its scripts and the map assets are
// kept so the app opens with no network; data the app read (its grid's layers,
// events, tasks, households) is served from the last answer when offline. Writes
// are never cached or replayed here: the page's outbox (IndexedDB) sends them.
const VERSION = "gridmap-app-v1";
const SHELL = [
  "/app/",
  "/app/static/app.css",
  "/app/static/app.js",
  "/app/static/api.js",
  "/app/static/db.js",
  "/app/static/i18n.js",
  "/app/static/map.js",
  "/app/static/outbox.js",
  "/app/static/report.js",
  "/app/static/tasks.js",
  "/app/static/eventcard.js",
  "/app/static/patrol.js",
  "/app/static/knock.js",
  "/app/static/icon.svg",
  "/app/manifest.webmanifest",
  "/static/vendor/leaflet/dist/leaflet.css",
  "/static/vendor/leaflet/dist/leaflet.js",
];
const DATA = /^\/(collections|events|patrol|doorknock|registry)\b/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION && k !== `${VERSION}-data`).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request, cacheName) {
  const cache = await caches.open(cacheName);
  try {
    const resp = await fetch(request);
    if (resp.ok) cache.put(request, resp.clone());
    return resp;
  } catch (e) {
    const hit = await cache.match(request, { ignoreVary: true });
    if (hit) return hit;
    throw e;
  }
}

async function cacheFirst(request) {
  const hit = await caches.match(request, { ignoreVary: true });
  if (hit) {
    fetch(request).then((r) => { if (r.ok) caches.open(VERSION).then((c) => c.put(request, r)); }).catch(() => {});
    return hit;
  }
  const resp = await fetch(request);
  if (resp.ok) (await caches.open(VERSION)).put(request, resp.clone());
  return resp;
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate" && url.pathname.startsWith("/app")) {
    event.respondWith(networkFirst(new Request("/app/", { credentials: "same-origin" }), VERSION).catch(() => caches.match("/app/")));
  } else if (url.pathname.startsWith("/app/static/") || url.pathname.startsWith("/static/vendor/")) {
    event.respondWith(cacheFirst(req));
  } else if (DATA.test(url.pathname)) {
    event.respondWith(networkFirst(req, `${VERSION}-data`));
  }
});

self.addEventListener("message", (event) => {
  // Sign-out: nothing of this worker's data stays on the phone.
  if (event.data === "logout") event.waitUntil(caches.delete(`${VERSION}-data`));
});
