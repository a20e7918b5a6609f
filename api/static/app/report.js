// 事件上报: category, description, urgency, 1-3 photos (resized on the phone),
// location from GPS (with its accuracy) or tapped on the map, and when it was seen.
// The report goes to the outbox first, so it survives a dead network or a closed tab.
import { newKey } from "./db.js";
import { enqueue, flush } from "./outbox.js";
import { position } from "./map.js";
import { t, label } from "./i18n.js";

const MAX_SIDE = 1600;
const MAX_PHOTOS = 3;

async function resize(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  // Re-encoding drops EXIF (GPS) on the phone already; the server strips it again.
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
}

export function initReport(cfg, app) {
  const form = document.getElementById("report-form");
  const cat = document.getElementById("r-category");
  const sub = document.getElementById("r-sub");
  const urg = document.getElementById("r-urgency");
  const photosIn = document.getElementById("r-photos");
  const thumbs = document.getElementById("r-thumbs");
  const whereEl = document.getElementById("r-where");
  const err = document.getElementById("r-error");
  const result = document.getElementById("r-result");
  let photos = [];
  let place = null;
  let openedAt = new Date();

  const opt = (value, zh, en) => { const o = document.createElement("option"); o.value = value; label(o, zh, en); return o; };
  cat.append(opt("", "请选择类别", "Choose a category"));
  cfg.categories.forEach((c) => cat.append(opt(c.code, c.zh, c.en)));
  const fillSub = () => {
    sub.replaceChildren(opt("", "无", "None"));
    (cfg.categories.find((c) => c.code === cat.value)?.subcategories || []).forEach((s) => sub.append(opt(s.code, s.zh, s.en)));
  };
  cat.addEventListener("change", fillSub);
  fillSub();
  cfg.urgencies.forEach((u, i) => {
    const l = document.createElement("label");
    const r = document.createElement("input");
    Object.assign(r, { type: "radio", name: "urgency", value: u.code, checked: i === 0 });
    l.append(r, label(document.createElement("span"), u.zh, u.en));
    urg.append(l);
  });

  const setPlace = (p, how) => {
    place = p;
    const acc = p.accuracy != null ? `±${Math.round(p.accuracy)} 米` : "";
    const accEn = p.accuracy != null ? `±${Math.round(p.accuracy)} m` : "";
    label(whereEl, `${how.zh}:${p.lon.toFixed(6)}, ${p.lat.toFixed(6)} ${acc}`, `${how.en}: ${p.lon.toFixed(6)}, ${p.lat.toFixed(6)} ${accEn}`);
  };
  document.getElementById("r-gps").addEventListener("click", () => {
    if (position.lon == null) { label(whereEl, "尚未取得 GPS 位置,请稍候或在地图上选", "No GPS fix yet: wait or pick on the map"); return; }
    setPlace({ ...position }, { zh: "GPS", en: "GPS" });
  });
  document.getElementById("r-pick").addEventListener("click", () => {
    app.show("map");
    app.pick(t("点按地图选择事件位置", "Tap the map where the event is"), (ll) => {
      setPlace({ lon: ll.lng, lat: ll.lat, accuracy: null }, { zh: "地图选点", en: "Picked on map" });
      app.show("report");
    });
  });
  photosIn.addEventListener("change", async () => {
    const files = [...photosIn.files].slice(0, MAX_PHOTOS - photos.length);
    for (const f of files) photos.push(await resize(f));
    photos = photos.slice(0, MAX_PHOTOS);
    thumbs.replaceChildren(...photos.map((b) => { const i = document.createElement("img"); i.src = URL.createObjectURL(b); i.alt = ""; return i; }));
    photosIn.value = "";
    if (!place && position.lon != null) setPlace({ ...position }, { zh: "GPS", en: "GPS" });
  });
  form.addEventListener("focusin", () => { if (!form.dataset.started) { form.dataset.started = "1"; openedAt = new Date(); } });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const fail = (zh, en) => { label(err, zh, en); err.hidden = false; };
    if (!cat.value) return fail("请选择事件类别", "Choose a category");
    const desc = document.getElementById("r-desc").value.trim();
    if (!desc) return fail("请填写描述", "Describe the event");
    if (!place) return fail("请用 GPS 定位或在地图上选点", "Use GPS or pick the place on the map");
    const body = {
      category: cat.value,
      description: desc,
      urgency: form.querySelector("input[name=urgency]:checked").value,
      channel: "app",
      location: { lon: +place.lon.toFixed(7), lat: +place.lat.toFixed(7), crs: "wgs84" },
      observed_at: openedAt.toISOString(),
    };
    if (sub.value) body.subcategory = sub.value;
    if (place.accuracy != null) body.accuracy_m = Math.min(10000, Math.max(1, Math.round(place.accuracy)));
    await enqueue({ kind: "report", key: newKey(), body, photos });
    form.reset(); fillSub(); photos = []; thumbs.replaceChildren(); place = null; delete form.dataset.started;
    label(whereEl, "尚未定位", "No location yet");
    result.hidden = false;
    result.className = "result queued";
    label(result, "已保存,待发送…", "Saved, waiting to send…");
    await flush(app.sent);
  });

  return {
    sent(item, answer) {
      if (item.kind !== "report") return;
      result.hidden = false;
      result.className = "result";
      label(result, `上报成功:事件 #${answer.id},网格 ${answer.grid_code || "—"}`, `Reported: event #${answer.id}, grid ${answer.grid_code || "—"}`);
      result.dataset.eventId = answer.id;
    },
  };
}
