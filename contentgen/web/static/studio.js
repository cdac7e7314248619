// Progressive enhancement only: every screen works without this file (the server checks everything again).
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

  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // The approve button stays disabled until every failing rule is ticked and has a reason.
  function initOverrides() {
    var approve = document.getElementById("approve");
    if (!approve || approve.dataset.needsOverrides !== "1") { return; }
    var rows = document.querySelectorAll("#overrides .ov");
    function update() {
      var ok = rows.length > 0;
      rows.forEach(function (row) {
        var box = row.querySelector("input[type=checkbox]");
        var why = row.querySelector("input[name^='override_reason:']");
        if (!box || box.disabled || !box.checked || !why || why.value.trim().length < 3) { ok = false; }
      });
      approve.disabled = !ok;
      approve.title = ok ? "" : "Tick each failing rule and say why it may be overridden";
    }
    rows.forEach(function (row) {
      row.querySelectorAll("input").forEach(function (el) {
        el.addEventListener("input", update);
        el.addEventListener("change", update);
      });
    });
    update();
  }

  function initEditor() {
    var form = document.getElementById("decide-form");
    if (!form) { return; }
    var result = document.getElementById("recheck-result");
    form.querySelectorAll("input[name=subject], input[name=preheader], textarea[name=body], textarea[name^=explanation_]")
      .forEach(function (el) {
        el.addEventListener("input", function () { if (result) { result.classList.add("stale"); } });
      });
    var reason = form.querySelector("textarea[name=reason]");
    var pending = null;
    if (reason) {
      reason.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          var b = document.getElementById(pending === "reject" ? "reject" : "approve");
          if (b && !b.disabled) { b.click(); } else { document.getElementById("reject").click(); }
        }
      });
    }
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      var link;
      if (e.key === "j" && (link = document.getElementById("next"))) { location.href = link.href; }
      else if (e.key === "k" && (link = document.getElementById("prev"))) { location.href = link.href; }
      else if (e.key === "e") {
        var f = form.querySelector("textarea[name=body], input[name=subject]");
        if (f) { e.preventDefault(); f.focus(); }
      } else if (e.key === "a" || e.key === "r") {
        pending = e.key === "a" ? "approve" : "reject";
        var btn = document.getElementById(pending);
        if (!btn) { return; }
        e.preventDefault();
        if (pending === "approve" && btn.disabled) {
          var box = form.querySelector("#overrides input[type=checkbox]:not(:checked)");
          (box || reason).focus();
        } else if (reason && !reason.value.trim()) {
          reason.placeholder = "Why? (then Ctrl+Enter to " + pending + ")";
          reason.focus();
        } else { btn.click(); }
      }
    });
  }

  function initQueue() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr[data-href]"));
    if (!rows.length) { return; }
    var at = -1;
    function select(i) {
      if (at >= 0) { rows[at].classList.remove("cursor"); }
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows[at].classList.add("cursor");
      rows[at].scrollIntoView({block: "nearest"});
    }
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (e.key === "j") { select(at + 1); }
      else if (e.key === "k") { select(at - 1); }
      else if ((e.key === "Enter" || e.key === "o") && at >= 0) { location.href = rows[at].dataset.href; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tabs]").forEach(initTabs);
    document.querySelectorAll("button[data-busy]").forEach(function (b) {
      b.form && b.form.addEventListener("submit", function () {
        setTimeout(function () { b.disabled = true; b.textContent = b.dataset.busy; }, 0);
      });
    });
    initOverrides();
    initEditor();
    initQueue();
  });
})();
