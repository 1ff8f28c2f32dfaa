// The link page's two touches; the page works without them.
(function () {
  "use strict";

  // After Activate the page stays (the file goes to the app): say what happens next.
  var activate = document.querySelector("form[data-activate]");
  var next = document.querySelector("[data-after-activate]");
  if (activate && next) {
    activate.addEventListener("submit", function () {
      next.hidden = false;
      next.scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
  }

  // iPadOS 13+ reports a Mac User-Agent; touch support tells the two apart (Macs have no touch screen).
  var label = document.querySelector("[data-platform-label] strong");
  if (!label || label.textContent !== "Mac" || !(navigator.maxTouchPoints > 0)) return;
  label.textContent = "iPad";
  label.parentNode.firstChild.textContent = "This looks like an ";
  document.querySelectorAll("[data-platform-input]").forEach(function (input) { input.value = "ipados"; });
  document.querySelectorAll("[data-desktop-only]").forEach(function (block) {
    block.hidden = true;
    block.querySelectorAll("input[required]").forEach(function (input) { input.required = false; });
  });
  // "Not your device?" now offers the Mac, and not the iPad the page shows.
  document.querySelectorAll("[data-platform-choice]").forEach(function (item) {
    item.hidden = item.getAttribute("data-platform-choice") === "ipados";
  });
})();
