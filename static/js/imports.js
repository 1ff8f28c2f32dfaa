// The import page follows its background job: it moves the progress bar, and reloads when the job ends.
(function () {
  "use strict";

  var block = document.querySelector("[data-import-progress]");
  if (!block) return;
  var url = block.getAttribute("data-import-progress");
  var bar = block.querySelector("progress");
  var phase = block.querySelector("[data-phase]");
  var count = block.querySelector("[data-count]");
  var done = block.querySelector("[data-done]");

  function show(job) {
    phase.textContent = job.phase;
    if (job.percent === null) {
      bar.removeAttribute("value");  // a step that cannot be measured: an indeterminate bar
    } else {
      bar.value = job.percent;
    }
    count.hidden = job.percent === null;
    done.textContent = job.done.toLocaleString("en");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (job && job.finished) { window.location.reload(); return; }
        if (job) show(job);
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }

  setTimeout(poll, 1000);
})();
