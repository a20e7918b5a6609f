// One event as a card: what, where, when, its photos and history, and the workflow
// actions the signed-in role may take from its state (If-Match: the version shown,
// so an event changed meanwhile is reloaded instead of overwritten). Used by the
// phone app's tasks and the console's event list.
import { ApiError, call, get } from "./api.js";
import { t, label } from "./i18n.js";

const el = (tag, cls) => { const e = document.createElement(tag); if (cls) e.className = cls; return e; };
export const when = (iso) => (iso ? new Date(iso).toLocaleString(t("zh-CN", "en-GB"), { hour12: false }) : "—");

export async function renderEvent(container, id, cfg, { toast, onChange, onClose } = {}) {
  container.hidden = false;
  container.replaceChildren(label(el("p", "muted"), "加载中…", "Loading…"));
  let ev, etag, hist;
  try {
    const r = await call("GET", `/events/${id}`);
    ev = r.data; etag = r.etag;
    hist = (await get(`/events/${id}/transitions`)).transitions;
  } catch (e) {
    container.replaceChildren(label(el("p", "error"), `无法打开:${e.message}`, `Cannot open: ${e.message}`));
    return null;
  }
  const h = label(el("h3"), `事件 #${ev.id} · ${ev.status_name.zh}`, `Event #${ev.id} · ${ev.status_name.en}`);
  const cat = label(el("p"), `${ev.category_name?.zh || ev.category} · ${cfg.urgency_names?.[ev.urgency]?.zh || ev.urgency || ""}`, `${ev.category_name?.en || ev.category} · ${cfg.urgency_names?.[ev.urgency]?.en || ev.urgency || ""}`);
  const d = el("p"); d.textContent = ev.description || "";
  const due = ev.step_due_at || ev.due_at;
  const meta = label(el("p", "muted"), `网格 ${ev.grid_code || "—"} · 上报 ${when(ev.reported_at)} · 时限 ${when(due)}`, `Grid ${ev.grid_code || "—"} · reported ${when(ev.reported_at)} · due ${when(due)}`);
  const parts = [h, cat, d, meta];
  if (due && new Date(due) < new Date() && cfg.open_states.includes(ev.status)) parts.push(label(el("p", "overdue"), "已超期", "Overdue"));
  if (ev.supervised_at) parts.push(label(el("p", "overdue"), `督办 ${when(ev.supervised_at)}`, `Supervised ${when(ev.supervised_at)}`));
  const photos = el("div", "thumbs");
  const allPhotos = [...(ev.photos || []), ...hist.flatMap((x) => x.photos || [])];
  [...new Set(allPhotos)].forEach((p) => { const i = el("img"); i.src = `/events/media/${encodeURIComponent(p)}`; i.alt = t("事件照片", "Event photo"); photos.append(i); });
  parts.push(photos, label(el("h4"), "流转记录", "History"));
  const ol = el("ol");
  hist.forEach((x) => {
    const li = el("li");
    const act = cfg.action_names[x.action];
    const to = cfg.states[x.to];
    li.textContent = `${when(x.at)} ${act ? t(act.zh, act.en) : x.action} → ${to ? t(to.zh, to.en) : x.to}${x.note ? ` · ${x.note}` : ""}`;
    ol.append(li);
  });
  parts.push(ol);
  const acts = el("div", "row");
  const note = el("textarea"); note.rows = 2; note.maxLength = 2000; note.placeholder = t("处理说明", "Note");
  const after = el("input"); after.type = "file"; after.accept = "image/*"; after.setAttribute("capture", "environment");
  const afterLabel = label(el("label"), "处置后照片(处置时必填)", "After photo (needed to hand in)");
  const hours = el("input"); hours.type = "number"; hours.min = "1"; hours.max = "720"; hours.value = "24";
  const hoursLabel = label(el("label"), "延期小时数", "Extension hours");
  const msg = el("p", "muted"); msg.setAttribute("role", "status");
  const available = Object.entries(cfg.actions).filter(([, a]) => a.sources.includes(ev.status));
  available.forEach(([code, a]) => {
    const b = el("button", code === "handle" || code === "close" ? "primary" : "");
    b.type = "button"; b.dataset.action = code;
    label(b, a.zh, a.en);
    b.addEventListener("click", async () => {
      const body = { action: code };
      if (note.value.trim()) body.note = note.value.trim();
      if (code === "extend" || code === "approve_extension") body.hours = Number(hours.value);
      if (code === "inspect") body.result = "pass";
      b.disabled = true;
      try {
        if (code === "handle") {
          if (!after.files.length) throw new ApiError(400, t("请先拍摄处置后照片", "Take an after photo first"));
          const form = new FormData(); form.append("file", after.files[0], "after.jpg");
          body.photos = [(await call("POST", "/events/media", { form })).data.name];
        }
        await call("POST", `/events/${ev.id}/transitions`, { json: body, headers: { "If-Match": etag } });
        if (toast) toast(t(`已${a.zh}`, `${a.en}: done`));
        if (onChange) await onChange(ev.id);
        await renderEvent(container, ev.id, cfg, { toast, onChange, onClose });
      } catch (e) {
        const stale = e.status === 412 || e.status === 409;
        label(msg, stale ? `事件已被他人更新,请刷新:${e.message}` : `操作失败:${e.message}`, stale ? `Changed meanwhile, reload: ${e.message}` : `Failed: ${e.message}`);
        if (e.status === 0) label(msg, "离线时不能办理,请联网后再试", "Offline: act when the network is back");
        b.disabled = false;
      }
    });
    acts.append(b);
  });
  if (available.length) {
    parts.push(note);
    if (available.some(([c]) => c === "handle")) parts.push(afterLabel, after);
    if (available.some(([c]) => c === "extend" || c === "approve_extension")) parts.push(hoursLabel, hours);
    parts.push(acts, msg);
  }
  const close = el("button"); close.type = "button"; label(close, "关闭", "Close");
  close.addEventListener("click", () => { container.hidden = true; if (onClose) onClose(); });
  parts.push(close);
  container.replaceChildren(...parts);
  container.dataset.eventId = ev.id;
  return ev;
}
