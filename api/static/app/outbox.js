// Sending what waits on the phone: reports (photos first), door-knock visits and
// patrol tracks, oldest first, each with the Idempotency-Key it got when it was
// made, so a retry after a lost answer stores it once. Kept on a network error,
// a 401 (sign in again), a 429 or a 5xx; dropped only when the server answers,
// and then shown (a refusal keeps its reason visible until the worker dismisses it).
import { ApiError, call } from "./api.js";
import { outbox } from "./db.js";

let running = null;
const watchers = new Set();
export const onChange = (fn) => watchers.add(fn);
const changed = async () => { const items = await outbox.all(); watchers.forEach((fn) => fn(items)); return items; };

async function uploadPhotos(item) {
  const names = item.photoNames || [];
  for (let i = names.length; i < (item.photos || []).length; i++) {
    const form = new FormData();
    form.append("file", item.photos[i], `photo-${i + 1}.jpg`);
    const { data } = await call("POST", "/events/media", { form });
    names.push(data.name);
    item.photoNames = names;
    await outbox.put(item);
  }
  return names;
}

async function sendOne(item) {
  const headers = { "Idempotency-Key": item.key };
  if (item.kind === "report") {
    const photos = await uploadPhotos(item);
    const body = { ...item.body, photos };
    return (await call("POST", "/events", { json: body, headers })).data;
  }
  if (item.kind === "visit") {
    return (await call("POST", `/doorknock/campaigns/${item.campaign}/visits`, { json: item.body, headers })).data;
  }
  if (item.kind === "track") {
    return (await call("POST", "/patrol/tracks", { json: item.body, headers })).data;
  }
  throw new ApiError(400, `unknown item ${item.kind}`);
}

// One pass at a time; a call during a pass asks for one more pass after it, so an
// item added while the outbox is being sent is not left for the next timer.
let again = false;

export async function flush(onSent) {
  if (running) { again = true; return running; }
  running = (async () => {
    do {
      again = false;
      const items = (await outbox.all()).filter((i) => !i.refused);
      for (const item of items) {
        try {
          const answer = await sendOne(item);
          await outbox.remove(item.id);
          if (onSent) onSent(item, answer);
        } catch (e) {
          item.tries = (item.tries || 0) + 1;
          item.lastError = e.message;
          if (e instanceof ApiError && !e.retryable) item.refused = true;
          await outbox.put(item);
          if (!(e instanceof ApiError) || e.retryable) { again = false; break; } // the network or server: later
        }
      }
      await changed();
    } while (again);
  })().finally(() => { running = null; });
  return running;
}

export async function enqueue(item) {
  await outbox.add(item);
  await changed();
}

export const pending = () => changed();
export const dismiss = async (id) => { await outbox.remove(id); await changed(); };
