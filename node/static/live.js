/* coopnode: a proposal's counts, refreshed while its page is open and visible. The
   page is complete without this script; it only saves a reload. */
(function () {
  "use strict";
  var table = document.querySelector("table[data-live]");
  if (!table || !window.fetch) return;
  var url = table.getAttribute("data-live");
  var state = table.getAttribute("data-state");
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function apply(data) {
    if (data.state !== state) {
      window.location.reload(); // opened or closed: the page has more to show
      return;
    }
    var voters = document.querySelector("[data-voters]");
    if (voters) voters.textContent = format.format(data.voters);
    data.options.forEach(function (option) {
      var rows = table.querySelectorAll("tr[data-option]");
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].getAttribute("data-option") !== option.name) continue;
        rows[i].querySelector(".n").textContent = format.format(option.count);
        rows[i].querySelector(".pc").textContent = String(option.percent);
        rows[i].querySelector(".bar").style.width = option.percent + "%";
      }
    });
  }

  function refresh() {
    if (document.hidden) return;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }

  window.setInterval(refresh, 10000);
  document.addEventListener("visibilitychange", refresh);
})();
