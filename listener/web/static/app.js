// Listener web UI: keyboard use (? lists the keys), live draft length, unsaved-edit guard,
// SLA countdowns, presence.
// No inline script anywhere (CSP: script-src 'self'); all text goes in via textContent.
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // ---- X weighted length: a mirror of listener/policy.py::x_weighted_length ----
  const LIGHT = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];
  const URL_LEN = 23;
  const EMOJI_BASE = "\\u{1F000}-\\u{1FAFF}\\u2600-\\u27BF\\u2300-\\u23FF\\u2B00-\\u2BFF\\u2190-\\u21FF" +
    "\\u2934\\u2935\\u3030\\u303D\\u3297\\u3299\\u25AA-\\u25FE\\u2122\\u2139\\u203C\\u2049\\u24C2";
  const EMOJI_TAIL = "[\\uFE0F\\u{1F3FB}-\\u{1F3FF}]*";
  const EMOJI = new RegExp(
    "[\\u{1F1E6}-\\u{1F1FF}]{2}|[0-9#*]\\uFE0F?\\u20E3|[\\u00A9\\u00AE]\\uFE0F|" +
    "[" + EMOJI_BASE + "]" + EMOJI_TAIL + "(?:\\u200D[" + EMOJI_BASE + "]" + EMOJI_TAIL + ")*[\\u{E0020}-\\u{E007F}]*",
    "uy");
  const TLDS = "com|net|org|edu|gov|info|biz|io|co|app|dev|ai|me|tv|ly|gl|shop|store|online|site|" +
    "uk|us|ca|au|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|ie|pl|pt|br|mx|jp|cn|in|nz|eu";
  const URL_RE = new RegExp(
    "https?://[^\\s<>\"]+|(?<![@\\w.\\-/])(?:[a-z0-9](?:[a-z0-9\\-]*[a-z0-9])?\\.)+(?:" + TLDS + ")" +
    "(?![\\w\\-])(?::\\d+)?(?:/[^\\s<>\"]*)?", "giu");
  const TRAILING = ".,;:!?'\")]}";

  function weight(cp) {
    for (const [lo, hi] of LIGHT) { if (cp >= lo && cp <= hi) return 1; }
    return 2;
  }

  function xWeightedLength(raw) {
    const text = raw.normalize("NFC");
    // work in code points, like Python
    const cps = Array.from(text);
    const offsets = []; // UTF-16 offset -> code point index
    const u16 = []; // code point index -> UTF-16 offset
    let u = 0;
    for (let i = 0; i < cps.length; i++) { offsets[u] = i; u16[i] = u; u += cps[i].length; }
    offsets[u] = cps.length;
    u16[cps.length] = u;
    const urls = new Map();
    URL_RE.lastIndex = 0;
    let m;
    while ((m = URL_RE.exec(text)) !== null) {
      let end = m.index + m[0].length;
      while (end > m.index && TRAILING.includes(text[end - 1])) end -= 1;
      urls.set(offsets[m.index], offsets[end]);
    }
    let total = 0, i = 0;
    while (i < cps.length) {
      if (urls.has(i)) { total += URL_LEN; i = urls.get(i); continue; }
      const uOff = u16[i];
      EMOJI.lastIndex = uOff;
      const e = EMOJI.exec(text);
      if (e && e.index === uOff) {
        total += 2; i = offsets[uOff + e[0].length]; continue;
      }
      total += weight(cps[i].codePointAt(0));
      i += 1;
    }
    return total;
  }
  window.xWeightedLength = xWeightedLength;

  // ---- SLA countdowns ----
  function fmt(seconds) {
    const s = Math.abs(Math.trunc(seconds));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function tickSla() {
    const now = Date.now();
    document.querySelectorAll("[data-due]").forEach((el) => {
      const due = Date.parse(el.dataset.due);
      if (Number.isNaN(due)) return;
      const left = (due - now) / 1000;
      el.textContent = (left >= 0 ? "due in " : "overdue ") + fmt(left);
      el.classList.toggle("late", left < 0);
    });
  }

  function typing(ev) {
    const t = ev.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }
  const plainKey = (ev) => !(ev.ctrlKey || ev.metaKey || ev.altKey);

  // ---- everywhere: "?" lists the keys, "/" searches the queue ----
  function initKeys() {
    const overlay = document.getElementById("keys");
    const toggle = (show) => {
      if (!overlay) return;
      overlay.hidden = show === undefined ? !overlay.hidden : !show;
      if (!overlay.hidden) { const close = document.getElementById("keys-close"); if (close) close.focus(); }
    };
    const help = document.getElementById("keys-help");
    if (help) help.addEventListener("click", () => toggle());
    const close = document.getElementById("keys-close");
    if (close) close.addEventListener("click", () => toggle(false));
    if (overlay) overlay.addEventListener("click", (ev) => { if (ev.target === overlay) toggle(false); });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        if (overlay && !overlay.hidden) { toggle(false); ev.preventDefault(); return; }
        if (typing(ev)) { ev.target.blur(); ev.preventDefault(); }
        return;
      }
      if (typing(ev) || !plainKey(ev)) return;
      if (ev.key === "?") { toggle(); ev.preventDefault(); return; }
      if (ev.key === "/") {
        const search = document.getElementById("search");
        if (search) { search.focus(); search.select(); } else { window.location.assign("/queue#search"); }
        ev.preventDefault();
      }
    });
  }

  // ---- queue ----
  function initQueue() {
    if (window.location.hash === "#search") {
      const search = document.getElementById("search");
      if (search) search.focus();
    }
    const rows = Array.from(document.querySelectorAll("tr.case-row"));
    let cur = rows.length ? 0 : -1;
    const select = (i) => {
      if (!rows.length) return;
      cur = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach((r, j) => r.classList.toggle("selected", j === cur));
      rows[cur].scrollIntoView({ block: "nearest" });
    };
    if (rows.length) select(0);
    rows.forEach((r, j) => r.addEventListener("click", (ev) => {
      if (ev.target.closest("a,button,input,select")) return;
      select(j);
    }));
    const all = document.getElementById("select-all");
    if (all) all.addEventListener("change", () => {
      rows.forEach((r) => { const cb = r.querySelector('input[type="checkbox"]'); if (cb) cb.checked = all.checked; });
    });
    document.addEventListener("keydown", (ev) => {
      if (typing(ev) || !plainKey(ev) || cur < 0) return;
      const overlay = document.getElementById("keys");
      if (overlay && !overlay.hidden) return;
      const row = rows[cur];
      switch (ev.key) {
        case "j": select(cur + 1); break;
        case "k": select(cur - 1); break;
        case "x": { const cb = row.querySelector('input[type="checkbox"]'); if (cb) cb.checked = !cb.checked; break; }
        case "c": { const f = row.querySelector("form.claim-form"); if (f) f.requestSubmit(); else return; break; }
        case "e": case "Enter": window.location.assign(row.dataset.href); break;
        default: return;
      }
      ev.preventDefault();
    });
  }

  // ---- case page ----
  function initCase() {
    const caseEl = document.getElementById("case");
    const id = caseEl && caseEl.dataset.id;
    const text = document.getElementById("draft-text");
    const counter = document.getElementById("draft-length");
    const form = document.getElementById("draft-form");
    const warnings = document.getElementById("warnings");
    const dirtyNote = document.getElementById("dirty-note");
    const original = text ? text.defaultValue : "";
    const dirty = () => Boolean(text && !text.readOnly && text.value !== original);
    if (text && counter) {
      const max = form && form.dataset.max ? parseInt(form.dataset.max, 10) : null;
      const weighted = !form || form.dataset.weighted !== "";
      const update = () => {
        const n = weighted ? xWeightedLength(text.value) : Array.from(text.value).length;
        counter.textContent = String(n);
        counter.classList.toggle("over", max !== null && n > max);
        if (warnings && max !== null) {
          const live = warnings.querySelector("li.live");
          if (n > max) {
            const li = live || document.createElement("li");
            li.className = "live";
            li.textContent = "the reply is " + n + (weighted ? " weighted characters (X)" : " characters") + "; at most " + max;
            if (!live) warnings.appendChild(li);
          } else if (live) { live.remove(); }
        }
      };
      text.addEventListener("input", update);
      update();
    }
    // unsaved edits are never dropped: other forms wait until they are saved or discarded
    document.querySelectorAll("form").forEach((f) => {
      if (f === form || f.closest("header")) return;
      f.addEventListener("submit", (ev) => {
        if (!dirty()) return;
        ev.preventDefault();
        if (dirtyNote) { dirtyNote.hidden = false; dirtyNote.scrollIntoView({ block: "center" }); }
      });
    });
    const discard = document.getElementById("discard");
    if (discard && text) discard.addEventListener("click", () => {
      text.value = original;
      text.dispatchEvent(new Event("input"));
      if (dirtyNote) dirtyNote.hidden = true;
    });
    const go = (href) => {
      if (!href) return;
      if (dirty()) { if (dirtyNote) { dirtyNote.hidden = false; } return; }
      window.location.assign(href);
    };
    document.addEventListener("keydown", (ev) => {
      if (typing(ev) || !plainKey(ev)) return;
      const overlay = document.getElementById("keys");
      if (overlay && !overlay.hidden) return;
      const click = (elId) => { const el = document.getElementById(elId); if (el) el.click(); return Boolean(el); };
      switch (ev.key) {
        case "c": if (!click("claim")) return; break;
        case "a": if (!click("approve")) return; break;
        case "e": if (text && !text.readOnly) text.focus(); else return; break;
        case "j": go(caseEl && caseEl.dataset.next); break;
        case "k": go(caseEl && caseEl.dataset.prev); break;
        default: return;
      }
      ev.preventDefault();
    });
    if (id && document.querySelector('meta[name="csrf-token"]')) {
      const viewers = document.getElementById("viewers");
      const ping = () => {
        fetch("/cases/" + encodeURIComponent(id) + "/presence", {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" },
        }).then((r) => (r.ok ? r.json() : null)).then((data) => {
          if (!data || !viewers) return;
          viewers.textContent = data.viewers.length ? "· also looking: " + data.viewers.join(", ") : "";
        }).catch(() => {});
      };
      if (document.getElementById("actions") || form) window.setInterval(ping, 15000);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    initKeys();
    if (page === "queue") initQueue();
    if (page === "case") initCase();
    tickSla();
    window.setInterval(tickSla, 30000);
  });
})();
