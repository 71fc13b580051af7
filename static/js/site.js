// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // <span data-countdown="ISO time">: a live "2d 03:04:05" until that moment.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.countdown) - Date.now()) / 1000);
      if (left <= 0) { el.textContent = el.dataset.expired || "0"; return; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600),
          m = Math.floor(left % 3600 / 60), s = left % 60;
      var pad = function (n) { return String(n).padStart(2, "0"); };
      el.textContent = (d ? d + (el.dataset.dayUnit || "d") + " " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  // <form data-confirm="text">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var text = event.target.dataset && event.target.dataset.confirm;
    if (text && !window.confirm(text)) { event.preventDefault(); }
  }, true);
})();
