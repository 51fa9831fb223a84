// Reloads the live sessions table every second without reloading the page.
(function () {
  "use strict";
  var body = document.getElementById("session-rows");
  var stamp = document.getElementById("updated");
  if (!body) { return; }
  var busy = false;
  function tick() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(body.dataset.live, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.status === 401) { window.location = "/login"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          body.innerHTML = html;
          if (stamp) { stamp.textContent = new Date().toLocaleTimeString(); }
        }
      })
      .catch(function () {})
      .finally(function () { busy = false; });
  }
  setInterval(tick, 1000);
})();
