// mirato dashboards: cascading territory filters and sortable tables. No inline script anywhere
// (the Content-Security-Policy forbids it); the pages work without this file, only less handily.
"use strict";

function cascade() {
  const region = document.getElementById("f-region");
  const province = document.getElementById("f-province");
  const cpi = document.getElementById("f-cpi");
  if (!region || !province || !cpi) return;
  const apply = () => {
    const r = region.value;
    const p = province.value;
    for (const o of province.options) {
      if (!o.value) continue;
      o.hidden = r !== "" && o.dataset.region !== r;
    }
    if (province.selectedOptions[0] && province.selectedOptions[0].hidden) province.value = "";
    const p2 = province.value;
    for (const o of cpi.options) {
      if (!o.value) continue;
      o.hidden = (p2 !== "" && o.dataset.province !== p2) || (r !== "" && o.dataset.region !== r);
    }
    if (cpi.selectedOptions[0] && cpi.selectedOptions[0].hidden) cpi.value = "";
    return p;
  };
  region.addEventListener("change", apply);
  province.addEventListener("change", apply);
}

function sortable() {
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach((th, col) => {
      const button = th.querySelector("button.sort");
      if (!button) return;
      button.addEventListener("click", () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (tr) => {
          const td = tr.cells[col];
          const v = td ? td.dataset.v || "" : "";
          const n = Number(v);
          return td && td.classList.contains("num") && v !== "" && !Number.isNaN(n) ? n : v;
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "it");
          return asc ? c : -c;
        });
        for (const r of rows) body.appendChild(r);
      });
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  cascade();
  sortable();
  document.body.dataset.ready = "1";
});
