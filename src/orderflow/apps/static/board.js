// The MES board's connection state: live, lost (the SSE extension reconnects), live again.
(function () {
  "use strict";
  function show(state, text) {
    const el = document.getElementById("live");
    if (!el) return;
    el.className = "live " + state;
    el.dataset.state = state;
    el.textContent = text;
  }
  let lost = false;
  document.addEventListener("htmx:sseOpen", function () {
    show("on", lost ? "live again, caught up" : "live");
    lost = false;
  });
  document.addEventListener("htmx:sseError", function () {
    lost = true;
    show("lost", "connection lost, reconnecting…");
  });
  // A missing row is expected: a board lists only the first page of the queue.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) { event.preventDefault(); });
})();
