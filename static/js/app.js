// eventops: the little JavaScript the pages share. No inline scripts (CSP).
(function () {
  "use strict";

  // Polling elements carry data-poll. While the tab is hidden their requests are
  // skipped; when it becomes visible again they refresh at once (hx-trigger should
  // include "eventops:visible").
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail.elt;
    if (document.hidden && el && el.hasAttribute && el.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-poll]").forEach(function (el) {
      window.htmx.trigger(el, "eventops:visible");
    });
  });

  // Forms or buttons with data-confirm ask before submitting (destructive actions).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) ||
      event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // "/" focuses the search box, as in most consoles.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var box = document.getElementById("nav-search");
    if (box) {
      event.preventDefault();
      box.focus();
    }
  });
})();
