// 我的待办: open events of my grids (or assigned to me) on which my role can act,
// deadlines first, overdue marked; one opens with its history and photos, and the
// workflow actions of my role (If-Match: the version shown, so a stale page is told).
import { get } from "./api.js";
import { t, label } from "./i18n.js";
import { renderEvent, when } from "./eventcard.js";
import { eventMarkers } from "./map.js";

const el = (tag, cls) => { const e = document.createElement(tag); if (cls) e.className = cls; return e; };

export function initTasks(cfg, app) {
  const list = document.getElementById("task-list");
  const empty = document.getElementById("task-empty");
  const detail = document.getElementById("task-detail");
  const count = document.getElementById("task-count");
  const mine = (e) => cfg.open_states.includes(e.status) && Object.values(cfg.actions).some((a) => a.sources.includes(e.status));

  async function refresh() {
    let events;
    try { events = (await get("/events?limit=500")).events; } catch (e) { return; }
    const open = events.filter((e) => cfg.open_states.includes(e.status));
    eventMarkers(open, (e) => { app.show("tasks"); openTask(e.id); });
    const tasks = open.filter(mine).sort((a, b) => (a.step_due_at || a.due_at || "").localeCompare(b.step_due_at || b.due_at || ""));
    list.replaceChildren(...tasks.map((e) => {
      const li = el("li");
      const b = el("button");
      b.type = "button";
      b.dataset.eventId = e.id;
      const due = e.step_due_at || e.due_at;
      const title = el("span");
      label(title, `#${e.id} ${e.category_name?.zh || e.category} · ${e.status_name.zh}`, `#${e.id} ${e.category_name?.en || e.category} · ${e.status_name.en}`);
      b.append(title);
      if (due && new Date(due) < new Date()) b.append(label(el("span", "overdue"), "超期", "Overdue"));
      const meta = label(el("span", "meta"), `时限 ${when(due)} · ${e.description?.slice(0, 40) || ""}`, `Due ${when(due)} · ${e.description?.slice(0, 40) || ""}`);
      b.append(meta);
      b.addEventListener("click", () => openTask(e.id));
      li.append(b);
      return li;
    }));
    empty.hidden = tasks.length > 0;
    count.hidden = tasks.length === 0;
    count.textContent = String(tasks.length);
  }

  async function openTask(id) {
    await renderEvent(detail, id, cfg, { toast: app.toast, onChange: refresh });
    detail.scrollIntoView({ block: "start" });
  }

  return { refresh, openTask };
}
