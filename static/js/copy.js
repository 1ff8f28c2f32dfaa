// A copy button beside a value shown once (a desk phone's settings URL): put it on the clipboard.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[data-copy-status]");
    if (!field) return;

    function say(text) { if (status) status.textContent = text; }

    // Without the asynchronous clipboard (an insecure context), select the text and try the old way.
    function fallback() {
      field.focus();
      field.select();
      say(document.execCommand && document.execCommand("copy") ? "Copied." : "Press Ctrl+C to copy.");
    }

    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { say("Copied."); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
