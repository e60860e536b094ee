// The cache dashboard: samples /admin/stats every second, turns counters into rates, draws them.
(function () {
  "use strict";
  const WINDOW = 120; // seconds on the charts
  const series = { t: [], hits: [], misses: [], bypass: [], statements: [] };
  let previous = null;
  let readsChart = null;
  let dbChart = null;

  function fmt(value) { return value >= 100 ? Math.round(value).toString() : value.toFixed(1); }
  function set(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
  function sum(values) { return values.reduce((a, b) => a + b, 0); }

  function makeChart(id, labels, colors) {
    const host = document.getElementById(id);
    const opts = {
      width: Math.max(200, host.clientWidth - 16), height: 200,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{}].concat(labels.map((label, i) => ({ label: label, stroke: colors[i], width: 2 }))),
    };
    return new uPlot(opts, [[]].concat(labels.map(() => [])), host);
  }

  function row(name) {
    let tr = document.querySelector('#entities tr[data-entity="' + name + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.entity = name;
      tr.innerHTML = '<th scope="row"></th><td class="num hits" data-label="From the cache/s"></td>' +
        '<td class="num misses" data-label="From PostgreSQL/s"></td>' +
        '<td class="num bypass" data-label="Cache off or failing/s"></td>' +
        '<td class="num ratio" data-label="From the cache"></td><td class="num total" data-label="Since start"></td>';
      tr.querySelector("th").textContent = name.replace(/_/g, " ");
      document.getElementById("entities").appendChild(tr);
    }
    return tr;
  }

  // The words come with the sample (made on the server, like the page's first render).
  function showState(state, words) {
    set("mode", state.mode);
    set("mode-words", words.mode);
    set("orders-mode", state.orders);
    set("orders-words", words.orders);
    set("redis-health", words.redis);
    set("redis-words", words.redis_meaning);
    const health = document.getElementById("redis-health");
    if (health) health.className = "health " + words.redis.replace(/ /g, "-");
    set("breaker", state.breaker || "none (no Redis)");
    set("epoch", state.epoch === null ? "–" : String(state.epoch));
    set("modes", words.modes);
  }

  function showRates(sample, dt) {
    const totals = { hits: 0, misses: 0, bypass: 0, allHits: 0 };
    for (const [name, now] of Object.entries(sample.entities)) {
      const before = (previous && previous.entities[name]) || { hit: 0, near_hit: 0, miss: 0, bypass: 0 };
      const hits = (now.hit + now.near_hit - before.hit - before.near_hit) / dt;
      const misses = (now.miss - before.miss) / dt;
      const bypass = (now.bypass - before.bypass) / dt;
      const tr = row(name);
      tr.querySelector(".hits").textContent = fmt(hits);
      tr.querySelector(".misses").textContent = fmt(misses);
      tr.querySelector(".bypass").textContent = fmt(bypass);
      tr.querySelector(".ratio").textContent = hits + misses > 0 ? (100 * hits / (hits + misses)).toFixed(1) + " %" : "–";
      tr.querySelector(".total").textContent = String(now.hit + now.near_hit);
      totals.hits += hits; totals.misses += misses; totals.bypass += bypass;
      totals.allHits += now.hit + now.near_hit;
    }
    const statements = (sum(Object.values(sample.statements)) - sum(Object.values(previous.statements))) / dt;
    set("hits-rate", fmt(totals.hits));
    set("misses-rate", fmt(totals.misses));
    set("bypass-rate", fmt(totals.bypass));
    set("ratio", totals.hits + totals.misses > 0 ? (100 * totals.hits / (totals.hits + totals.misses)).toFixed(1) + " %" : "–");
    set("hits-total", String(totals.allHits));
    set("statements-rate", fmt(statements));
    return { hits: totals.hits, misses: totals.misses, bypass: totals.bypass, statements: statements };
  }

  function plot(sample, rates) {
    series.t.push(sample.t);
    for (const key of ["hits", "misses", "bypass", "statements"]) series[key].push(rates[key]);
    if (series.t.length > WINDOW) for (const key of Object.keys(series)) series[key].shift();
    if (typeof uPlot === "undefined") return;
    readsChart = readsChart || makeChart("reads-chart", ["hits/s", "misses/s", "bypassed/s"], ["#1c7c3c", "#b3261e", "#8a94a6"]);
    dbChart = dbChart || makeChart("db-chart", ["statements/s"], ["#1f5fbf"]);
    readsChart.setData([series.t, series.hits, series.misses, series.bypass]);
    dbChart.setData([series.t, series.statements]);
  }

  async function tick() {
    try {
      const response = await fetch("/admin/stats", { cache: "no-store" });
      const sample = await response.json();
      showState(sample.state, sample.words);
      if (previous && previous.pid === sample.pid && sample.t > previous.t) {
        plot(sample, showRates(sample, sample.t - previous.t));
      }
      previous = sample;
      set("sampled", "Sampled " + new Date(sample.t * 1000).toLocaleTimeString() + " from process " + sample.pid + ".");
    } catch (err) {
      set("sampled", "The service did not answer; retrying.");
    }
  }

  tick();
  setInterval(tick, 1000);
})();
