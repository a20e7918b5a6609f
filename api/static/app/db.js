// The phone's own store (IndexedDB): the outbox of reports, visits and tracks made
// offline, and the points of the patrol under way. Nothing here leaves the phone
// until the network is back; each outbox item carries its own Idempotency-Key.
const DB_NAME = "gridmap-app";
const VERSION = 1;
let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "id", autoIncrement: true });
        if (!db.objectStoreNames.contains("points")) db.createObjectStore("points", { keyPath: "id", autoIncrement: true });
        if (!db.objectStoreNames.contains("state")) db.createObjectStore("state");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

async function run(store, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const os = tx.objectStore(store);
    let out;
    Promise.resolve(fn(os)).then((v) => { out = v; });
    tx.oncomplete = () => resolve(out instanceof IDBRequest ? out.result : out);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const outbox = {
  add: (item) => run("outbox", "readwrite", (os) => os.add({ ...item, created: Date.now(), tries: 0 })),
  put: (item) => run("outbox", "readwrite", (os) => os.put(item)),
  remove: (id) => run("outbox", "readwrite", (os) => os.delete(id)),
  all: () => run("outbox", "readonly", (os) => os.getAll()),
};

export const points = {
  add: (p) => run("points", "readwrite", (os) => os.add(p)),
  all: () => run("points", "readonly", (os) => os.getAll()),
  clear: () => run("points", "readwrite", (os) => os.clear()),
};

export const state = {
  get: (key) => run("state", "readonly", (os) => os.get(key)),
  set: (key, value) => run("state", "readwrite", (os) => os.put(value, key)),
  del: (key) => run("state", "readwrite", (os) => os.delete(key)),
};

export function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain HTTP on a LAN address have no randomUUID.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
