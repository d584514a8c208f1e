// eventops: the little JavaScript the pages share. No inline scripts (CSP).
(function () {
  "use strict";

  // The phone navigation: the button shows or hides it.
  document.documentElement.classList.add("js");
  var toggle = document.getElementById("nav-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var open = toggle.closest(".topbar").classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

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

  // A lazily loaded part (data-retry) whose request failed (an HTTP error, no answer,
  // a timeout) says so, with a button that loads it again: never "Loading..." forever.
  function failed(event) {
    var el = event.detail && event.detail.elt;
    var box = el && el.closest ? el.closest("[data-retry]") : null;
    if (!box || !window.htmx) return;
    var url = box.getAttribute("hx-get");
    var xhr = event.detail.xhr;
    var why = xhr && xhr.status ? "HTTP " + xhr.status : "no answer";
    var note = document.createElement("p");
    note.className = "error load-failed";
    note.setAttribute("role", "alert");
    note.textContent = (box.getAttribute("data-retry") || "This part") + " did not load (" + why + "). ";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "btn";
    button.textContent = "Retry";
    button.addEventListener("click", function () {
      note.remove();
      window.htmx.ajax("GET", url, { source: box, target: box, swap: box.getAttribute("hx-swap") || "innerHTML" });
    });
    note.appendChild(button);
    box.querySelectorAll(".load-failed").forEach(function (old) { old.remove(); });
    box.appendChild(note);
  }
  ["htmx:responseError", "htmx:sendError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, failed);
  });

  // <time data-ago datetime="..."> reads "12 s ago", kept current every second (the
  // server wrote the absolute time, which stays if this script does not run).
  function ago() {
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var seconds = Math.max(0, Math.round((Date.now() - at) / 1000));
      el.textContent = seconds < 120 ? seconds + " s ago" : Math.round(seconds / 60) + " min ago";
    });
  }
  ago();
  document.addEventListener("htmx:afterSettle", ago);
  window.setInterval(ago, 1000);

  // The replay form's Start stays disabled until this window has a preview and a reason
  // is typed; changing the window or the rules makes the preview stale (the server
  // refuses a start without a matching preview anyway).
  function replayReady() {
    var form = document.querySelector("form[data-needs-preview]");
    var start = form && form.querySelector("[data-start]");
    if (!start) return;
    var reason = form.querySelector("[name=reason]");
    var ready = !!document.getElementById("previewed") && !!reason && reason.value.trim() !== "";
    start.disabled = !ready;
  }
  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form[data-needs-preview]");
    if (!form) return;
    if (event.target.name !== "reason") {
      var token = document.getElementById("previewed");
      if (token) token.remove();
    }
    replayReady();
  });
  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("form[data-needs-preview]")) {
      if (event.target.name === "rules") {
        var token = document.getElementById("previewed");
        if (token) token.remove();
      }
      replayReady();
    }
  });
  document.addEventListener("htmx:afterSettle", replayReady);
  replayReady();
})();
