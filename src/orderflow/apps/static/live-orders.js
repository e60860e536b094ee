// "My orders" and an order's page: live over Server-Sent Events (htmx's SSE extension swaps
// what the server sends); while no stream can be held, the page re-reads itself every 2 s,
// and stops as soon as a stream opens again (the extension keeps retrying it).
(function () {
  "use strict";
  const POLL_MS = 2000;
  let timer = null;

  function feed() { return document.getElementById("feed"); }

  function show(state, text) {
    const el = document.getElementById("live");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function poll() {
    const f = feed();
    if (f) htmx.ajax("GET", f.dataset.poll, { target: f.dataset.target, swap: "outerHTML" });
  }

  document.addEventListener("htmx:sseOpen", function () {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
    show("live", "live");
  });
  document.addEventListener("htmx:sseError", function () {
    show("polling", "checking every 2 seconds");
    if (timer === null) { poll(); timer = window.setInterval(poll, POLL_MS); }
  });
})();
