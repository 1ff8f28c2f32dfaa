// iPadOS 13+ reports a Mac User-Agent; touch support tells the two apart. The page works without this.
(function () {
  "use strict";
  var label = document.querySelector("[data-platform-label] strong");
  if (!label || label.textContent !== "Mac" || !(navigator.maxTouchPoints > 0)) return;  // Macs have no touch screen
  label.textContent = "iPad";
  label.parentNode.firstChild.textContent = "This looks like an ";
  document.querySelectorAll("[data-platform-input]").forEach(function (input) { input.value = "ipados"; });
  document.querySelectorAll("[data-desktop-only]").forEach(function (block) { block.hidden = true; });
})();
