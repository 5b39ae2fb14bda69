// The task page's live view: shows each new screen of the agent's browser as the server sends it.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  // The words this script writes, in the page's language (layout.html), English when missing.
  var textsTag = document.getElementById("hutch-texts");
  var T = textsTag ? JSON.parse(textsTag.textContent || "{}") : {};
  function say(key, english) { return T[key] || english; }
  var ends = {
    completed: say("task_completed", "The task is done. Reload the page to see every step."),
    failed: say("task_failed", "The task failed. Reload the page to see every step."),
    canceled: say("task_canceled", "The task was canceled. Reload the page to see every step."),
    deleted: say("task_deleted", "The task was deleted."),
  };
  var screen = document.getElementById("live-screen");
  var state = document.getElementById("live-state");
  var source = new EventSource(live.getAttribute("data-source"));
  source.addEventListener("screen", function (event) {
    var data = JSON.parse(event.data);
    screen.src = data.url;
    screen.hidden = false;
    state.textContent = say("task_step", "Step {step}: {action} on {page}")
      .replace("{step}", data.step || "?").replace("{action}", data.action).replace("{page}", data.page_url);
  });
  source.addEventListener("end", function (event) {
    var data = JSON.parse(event.data);
    state.textContent = ends[data.status] || ends.completed;
    source.close();
  });
})();
