// zh-CN first, English on request: every label carries data-zh and data-en.
let lang = localStorage.getItem("gridmap-lang") || "zh";

export const t = (zh, en) => (lang === "en" ? en : zh);
export const current = () => lang;

export function apply(root = document) {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.body.classList.toggle("en", lang === "en");
  root.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = lang === "en" ? el.dataset.en : el.dataset.zh; });
  const btn = document.getElementById("lang");
  if (btn) btn.textContent = lang === "en" ? "中文" : "EN";
}

export function toggle() {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem("gridmap-lang", lang);
  apply();
}

// An element with both labels, set as text (never as HTML).
export function label(el, zh, en) {
  el.dataset.zh = zh; el.dataset.en = en; el.textContent = t(zh, en);
  return el;
}
