// mlos-store web view: follow a running experiment, and submit the filter forms on change.
"use strict";

function autoSubmit() {
  for (const select of document.querySelectorAll("#status-filter, #x-choice")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

// Poll the store's state (trials by status, telemetry points); when it changes, fetch this page
// again and swap its <main>, so new and finished trials appear without a manual reload.
function follow() {
  const stateUrl = document.body.dataset.stateUrl;
  const every = Number(document.body.dataset.pollMs);
  if (!stateUrl || !(every > 0)) return;
  let last = null;
  async function tick() {
    try {
      const response = await fetch(stateUrl, { cache: "no-store" });
      if (response.ok) {
        const state = await response.text();
        if (last !== null && state !== last) await refresh();
        last = state;
        document.querySelector(".live").hidden = false;
      }
    } catch (error) {
      document.querySelector(".live").hidden = true;  // the server stopped: try again later
    }
    setTimeout(tick, every);
  }
  tick();
}

async function refresh() {
  const response = await fetch(location.href, { cache: "no-store" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("main");
  if (fresh) {
    document.querySelector("main").replaceWith(document.adoptNode(fresh));
    autoSubmit();
    await loadSections();
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
}

// A section marked data-load="URL" data-part="ID" shows the element #ID of that page once it is read:
// charts and statistics over every telemetry point, which the page itself does not wait for.
async function loadSections() {
  for (const section of document.querySelectorAll("[data-load]")) {
    const response = await fetch(section.dataset.load, { cache: "no-store" });
    if (!response.ok) continue;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const part = page.getElementById(section.dataset.part);
    if (part) section.replaceChildren(document.adoptNode(part));
  }
}

autoSubmit();
loadSections();
follow();
