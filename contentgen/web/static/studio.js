// Progressive enhancement only: every screen works without this file.
(function () {
  "use strict";
  function initTabs(box) {
    var tabs = box.querySelectorAll(".tab");
    var panes = box.querySelectorAll(".pane");
    function show(name) {
      tabs.forEach(function (t) { t.classList.toggle("on", t.dataset.tab === name); });
      panes.forEach(function (p) { p.classList.toggle("hidden", p.dataset.pane !== name); });
    }
    tabs.forEach(function (t) { t.addEventListener("click", function () { show(t.dataset.tab); }); });
    var first = box.querySelector(".tab.on") || tabs[0];
    if (first) { show(first.dataset.tab); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tabs]").forEach(initTabs);
    document.querySelectorAll("button[data-busy]").forEach(function (b) {
      b.form && b.form.addEventListener("submit", function () {
        setTimeout(function () { b.disabled = true; b.textContent = b.dataset.busy; }, 0);
      });
    });
    document.querySelectorAll("#editor textarea, #editor input").forEach(function (el) {
      el.addEventListener("input", function () {
        var r = document.getElementById("recheck-result");
        if (r) { r.classList.add("stale"); }
      });
    });
  });
})();
