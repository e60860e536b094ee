// The MES board's connection: live, lost (says so), then live again and caught up.
//
// A short break is the browser's own EventSource reconnect, with Last-Event-ID: the server
// replays what changed. A longer one closes the EventSource, and the SSE extension then retries
// with a backoff that grows to a minute; so while lost, the board asks /health every 2 s and,
// once the service answers, opens a fresh feed at once. A fresh feed has no Last-Event-ID and
// gets a full snapshot of the board.
(function () {
  "use strict";
  const PROBE_MS = 2000;
  let lost = false;
  let probe = null;

  function show(state, text) {
    const el = document.getElementById("live");
    if (!el) return;
    el.className = "live " + state;
    el.dataset.state = state;
    el.textContent = text;
  }

  function reopen() {
    const feed = document.getElementById("feed");
    const fresh = feed.cloneNode(false); // the old element leaves: the extension closes its feed
    feed.replaceWith(fresh);
    htmx.process(fresh);
  }

  function startProbing() {
    if (probe !== null) return;
    probe = window.setInterval(async function () {
      try {
        const response = await fetch("/health", { cache: "no-store" });
        if (response.ok && lost) { stopProbing(); reopen(); }
      } catch (err) { /* still down */ }
    }, PROBE_MS);
  }

  function stopProbing() {
    if (probe !== null) window.clearInterval(probe);
    probe = null;
  }

  document.addEventListener("htmx:sseOpen", function () {
    stopProbing();
    show("on", lost ? "live again, caught up" : "live");
    lost = false;
  });
  document.addEventListener("htmx:sseError", function () {
    lost = true;
    show("lost", "connection lost, reconnecting…");
    startProbing();
  });
  // A missing row is expected: a board lists only the first page of the queue.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) { event.preventDefault(); });
})();
