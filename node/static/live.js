/* coopnode: a proposal's counts and thread, refreshed while its page is visible.
   The page is complete without this script. */
(function () {
  "use strict";
  var doc = document;
  var table = doc.querySelector("table[data-live]");
  var thread = doc.querySelector("[data-live-thread]");
  if (!(table || thread) || !window.fetch) return;
  var format = new Intl.NumberFormat(doc.documentElement.lang || undefined).format;

  function apply(data) {
    if (data.state !== table.dataset.state) {
      // opened or closed: reload, unless someone writes
      if (!(thread && busy())) location.reload();
      return;
    }
    var n = doc.querySelector("[data-voters]");
    if (n) n.textContent = format(data.voters);
    var rows = table.querySelectorAll("tr[data-option]");
    data.options.forEach(function (o) {
      for (var i = 0, r; (r = rows[i]); i++) {
        if (r.dataset.option !== o.name) continue;
        r.querySelector(".n").textContent = format(o.count);
        r.querySelector(".pc").textContent = o.percent;
        r.querySelector(".bar").style.width = o.percent + "%";
      }
    });
  }

  // Someone writing, or a form open: the thread waits.
  function busy() {
    var t = thread.querySelectorAll("textarea"), i = t.length;
    while (i--) if (t[i].value || t[i] === doc.activeElement) return 1;
    return thread.querySelector("details[open]");
  }

  function get(url, html, then) {
    fetch(url, { headers: { Accept: html ? "text/html" : "application/json" } })
      .then(function (r) { return r.ok && (html ? r.text() : r.json()); })
      .then(function (d) { if (d) then(d); })
      .catch(function () {}); // offline: the next round tries again
  }

  function refresh() {
    if (doc.hidden) return;
    if (table) get(table.dataset.live, 0, apply);
    if (thread && !busy()) get(thread.dataset.liveThread, 1, function (h) {
      if (!busy()) thread.innerHTML = h;
    });
  }

  setInterval(refresh, 10000);
  doc.addEventListener("visibilitychange", refresh);
})();
