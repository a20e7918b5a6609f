// Calls to gridmap's HTTP API with the session cookie: every write carries the
// page's CSRF token; answers that are errors become ApiError with the server's text.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
export const BASE = "";

export class ApiError extends Error {
  constructor(status, text) { super(text); this.status = status; }
  get retryable() { return this.status === 0 || this.status === 401 || this.status === 408 || this.status === 429 || this.status >= 500; }
}

export async function call(method, path, { json, form, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  let body;
  if (method !== "GET") h["X-CSRF-Token"] = csrf;
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  let resp;
  try {
    resp = await fetch(BASE + path, { method, headers: h, body, credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network unavailable / 网络不可用");
  }
  const type = resp.headers.get("content-type") || "";
  const data = type.includes("json") ? await resp.json().catch(() => null) : await resp.text();
  if (!resp.ok) {
    const text = (data && data.description) || (typeof data === "string" ? data.slice(0, 200) : resp.statusText);
    throw new ApiError(resp.status, text);
  }
  return { data, etag: resp.headers.get("ETag"), status: resp.status };
}

export const get = (path) => call("GET", path).then((r) => r.data);
