// The task page's live view: shows each new screen of the agent's browser as the server sends it.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var screen = document.getElementById("live-screen");
  var state = document.getElementById("live-state");
  var source = new EventSource(live.getAttribute("data-source"));
  source.addEventListener("screen", function (event) {
    var data = JSON.parse(event.data);
    screen.src = data.url;
    screen.hidden = false;
    state.textContent = "Step " + (data.step || "?") + ": " + data.action + " on " + data.page_url;
  });
  source.addEventListener("end", function (event) {
    var data = JSON.parse(event.data);
    state.textContent = "The task is " + data.status + ". Reload the page to see every step.";
    source.close();
  });
})();
