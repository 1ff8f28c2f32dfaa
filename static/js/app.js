// Console behaviour that the pages work without: type toggles, confirmations, live blocks.
(function () {
  "use strict";

  // Show only the fieldsets of the chosen account type (PGSM or SNOM).
  function applyType(form) {
    var checked = form.querySelector("[data-account-type] input:checked");
    var type = checked ? checked.value : form.getAttribute("data-fixed-type");
    if (!type) return;
    form.querySelectorAll("[data-for-type]").forEach(function (set) {
      set.hidden = set.getAttribute("data-for-type") !== type;
    });
  }

  // The keep-alive warning appears only while keep-alive is ticked.
  function applyKeepalive(form) {
    var box = form.querySelector("input[name=keepalive]");
    var warning = form.querySelector("[data-keepalive-warning]");
    if (box && warning) warning.hidden = !box.checked;
  }

  document.querySelectorAll("form").forEach(function (form) {
    applyType(form);
    applyKeepalive(form);
    form.addEventListener("change", function () { applyType(form); applyKeepalive(form); });
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    // A second click would send the same idempotency key anyway; this just shows it.
    if (button && button.hasAttribute("data-once")) {
      setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  // Live blocks: every [data-refresh] block is fetched again each data-refresh-every seconds (10 unless it
  // says) and swapped for the fresh copy. A block that says its job has finished (data-finished) reloads
  // the page, which then shows the outcome.
  function follow(block) {
    var url = block.getAttribute("data-refresh");
    var every = 1000 * (Number(block.getAttribute("data-refresh-every")) || 10);

    function poll() {
      if (document.hidden) { setTimeout(poll, every); return; }
      // A background poll: it does not count as activity, so the server's idle limit still ends an
      // unattended session; once it has, the page reloads onto the sign-in form.
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Provisio-Poll": "1" } })
        .then(function (response) {
          if (response.redirected) { window.location.reload(); return null; }
          return response.ok ? response.text() : "";
        })
        .then(function (html) {
          if (html === null) return;
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.firstElementChild;
          if (fresh) { block.replaceWith(fresh); block = fresh; }
          if (block.hasAttribute("data-finished")) { window.location.reload(); return; }
          setTimeout(poll, every);
        })
        .catch(function () { setTimeout(poll, every); });
    }

    setTimeout(poll, every);
  }

  document.querySelectorAll("[data-refresh]:not([data-finished])").forEach(follow);
})();
