// The inbox's conversation page: new messages join the thread as they arrive, without reloading.
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  if (!thread || !window.EventSource) { return; }
  var state = document.getElementById("live-state");
  // The words this script writes, in the page's language (layout.html), English when missing.
  var textsTag = document.getElementById("hutch-texts");
  var T = textsTag ? JSON.parse(textsTag.textContent || "{}") : {};
  function say(key, english) { return T[key] || english; }
  var names = { user: thread.dataset.person, assistant: thread.dataset.agent, human: say("team", "Team") };

  function show(message) {
    if (document.getElementById("msg-" + message.seq)) { return; }
    var empty = document.getElementById("thread-empty");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    item.className = "msg " + message.role + " fresh";
    item.id = "msg-" + message.seq;
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = message.role === "human" && message.author_id === thread.dataset.me ? say("you", "You") : names[message.role] || message.role;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = message.content;
    var meta = document.createElement("span");
    meta.className = "meta";
    // As the page shows the others: the stored UTC time, to the second.
    meta.textContent = message.created_at.replace("T", " ").slice(0, 19);
    if (message.role === "assistant") {
      meta.textContent += " · " + say("tokens", "{in} in · {out} out")
        .replace("{in}", message.input_tokens).replace("{out}", message.output_tokens) + " · $" +
        (message.cost_micro_usd / 1e6).toFixed(4) + (message.model ? " · " + message.model : "");
    }
    if (message.status === "failed") { meta.textContent += " · " + say("not_delivered", "not delivered"); }
    item.append(who, text, meta);
    thread.appendChild(item);
    thread.scrollTop = thread.scrollHeight;
  }

  thread.scrollTop = thread.scrollHeight;
  var source = new EventSource(thread.dataset.events);
  source.addEventListener("message", function (event) { show(JSON.parse(event.data)); });
  source.addEventListener("open", function () { if (state) { state.textContent = say("live", "New messages appear here as they arrive."); } });
  source.addEventListener("error", function () { if (state) { state.textContent = say("reconnecting", "Reconnecting…"); } });
  window.addEventListener("beforeunload", function () { source.close(); });
})();
