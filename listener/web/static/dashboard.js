// Dashboard extras: PNG export of a chart (the server's standalone SVG drawn on a canvas),
// and the range menu clearing the custom dates. No inline script (CSP: script-src 'self').
"use strict";

(function () {
  function download(href, name) {
    const a = document.createElement("a");
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  async function svgToPng(url, name) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error("export failed: HTTP " + response.status);
    const svg = await response.text();
    const img = new Image();
    const loaded = new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; });
    img.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(svg)));
    await loaded;
    const scale = 2; // crisp on high-density screens and in slides
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth * scale;
    canvas.height = img.naturalHeight * scale;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0);
    download(canvas.toDataURL("image/png"), name);
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.export-png");
    if (!link) return;
    event.preventDefault();
    const stem = (link.dataset.name || "chart") + ".png";
    link.classList.add("busy");
    svgToPng(link.href, stem)
      .catch((err) => { link.title = String(err); })
      .finally(() => { link.classList.remove("busy"); link.dataset.done = "1"; });
  });

  // the terms panels: read from posts, so they arrive after the charts
  const panel = document.querySelector("#terms[data-src]");
  if (panel && panel.querySelector("li.loading")) {
    const link = panel.dataset.link;
    const fill = (list, items, emptyText, extra) => {
      list.textContent = "";
      if (!items.length) {
        const li = document.createElement("li");
        li.className = "empty";
        li.textContent = emptyText;
        list.appendChild(li);
        return;
      }
      for (const t of items) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = "/mentions?" + link + "&q=" + encodeURIComponent(t.term);
        a.textContent = t.term;
        const small = document.createElement("small");
        small.textContent = " " + t.count + extra(t);
        li.append(a, small);
        list.appendChild(li);
      }
    };
    fetch(panel.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then((data) => {
        fill(panel.querySelector("ol.terms"), data.top, "Not enough posts.", () => "");
        const rising = document.querySelector('#emerging ol.terms');
        if (rising) fill(rising, data.emerging, "Nothing is rising.", (t) => (t.new ? " · new" : " · ×" + t.lift));
        const sampled = panel.querySelector("small.sampled");
        if (sampled) sampled.textContent = data.sampled + " posts read across the range";
        panel.dataset.loaded = "1";
      })
      .catch(() => { panel.dataset.loaded = "error"; });
  }

  const range = document.querySelector('#range select[name="window"]');
  if (range) {
    const dates = document.querySelectorAll("#range label.dates");
    const show = () => dates.forEach((d) => { d.hidden = range.value !== "custom"; });
    range.addEventListener("change", () => {
      if (range.value !== "custom") {
        document.querySelectorAll('#range input[type="date"]').forEach((i) => { i.value = ""; });
      }
      show();
    });
    show();
  }
})();
