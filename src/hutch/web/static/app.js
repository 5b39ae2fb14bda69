// Hutch dashboard: small enhancements; every form also works without this script.
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  // The words this script writes, in the page's language (layout.html), English when missing.
  var textsTag = document.getElementById("hutch-texts");
  var T = textsTag ? JSON.parse(textsTag.textContent || "{}") : {};
  function say(key, english) { return T[key] || english; }

  // Ask before destructive actions.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  // Copy buttons: data-copy names the element whose text (or value) is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    var text = source ? (source.value !== undefined && source.tagName !== "P" ? source.value : source.textContent) : "";
    navigator.clipboard.writeText(text.trim()).then(function () {
      var label = button.textContent;
      button.textContent = say("copied", "Copied");
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // A managed Telegram bot being created: the page hears when it is connected.
  var waiting = document.getElementById("managed-wait");
  if (waiting && window.fetch) {
    var state = document.getElementById("managed-state");
    var timer = setInterval(function () {
      fetch(waiting.getAttribute("data-poll"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (found) {
          if (!found || found.status === "waiting" || found.status === "opened") { return; }
          clearInterval(timer);
          if (found.status === "connected") {
            state.textContent = say("bot_connected", "Connected: @{bot} answers for this agent now.")
              .replace("{bot}", found.bot_username);
            state.className = "ok";
            setTimeout(function () { window.location = waiting.getAttribute("data-done"); }, 2500);
          } else {
            state.textContent = say("bot_not_connected", "The bot could not be connected: ") + found.error;
            state.className = "notice error";
          }
        });
    }, 2000);
  }

  // The temperature slider shows its value.
  var slider = document.getElementById("temperature");
  var shown = document.getElementById("temperature-value");
  if (slider && shown) { slider.addEventListener("input", function () { shown.textContent = slider.value; }); }

  // Avatar preview before upload.
  document.querySelectorAll("input[type=file][data-preview]").forEach(function (input) {
    input.addEventListener("change", function () {
      var img = document.getElementById(input.getAttribute("data-preview"));
      if (img && input.files && input.files[0]) { img.src = URL.createObjectURL(input.files[0]); }
    });
  });

  // Uploads with a progress bar.
  document.querySelectorAll("form[data-progress]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = document.getElementById(form.getAttribute("data-progress"));
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRF-Token", csrf);
      bar.hidden = false;
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round((100 * e.loaded) / e.total); }
      });
      request.addEventListener("load", function () {
        if (request.responseURL && request.status < 400) { window.location = request.responseURL; return; }
        document.open(); document.write(request.responseText); document.close();
      });
      request.send(new FormData(form));
    });
  });

  // The chat playground streams replies.
  var chat = document.getElementById("chat");
  var chatForm = document.getElementById("chat-form");
  if (chat && chatForm) {
    chat.scrollTop = chat.scrollHeight;
    chatForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = chatForm.querySelector("input[name=message]");
      var picker = chatForm.querySelector("input[name=file]");
      var text = input.value.trim();
      var file = picker && picker.files.length ? picker.files[0] : null;
      if (!text && !file) { input.focus(); return; }
      var empty = document.getElementById("chat-empty");
      if (empty) { empty.remove(); }
      var mine = bubble("user", text || file.name);
      if (file && /^image\//.test(file.type)) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = say("image_sent", "Image sent: ") + file.name;
        img.style.cssText = "display:block;max-width:14rem;max-height:14rem";
        mine.appendChild(img);
      }
      var reply = bubble("assistant", "");
      reply.setAttribute("aria-busy", "true");
      input.value = "";
      var body = new FormData();
      body.append("message", text);
      body.append("csrf", csrf);
      if (file) { body.append("file", file); picker.value = ""; }
      fetch(chatForm.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "text/event-stream", "X-CSRF-Token": csrf },
      }).then(function (response) {
        if (!response.ok) {
          return response.text().then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var alert = doc.querySelector("[role=alert]");
            reply.textContent = alert ? alert.textContent.trim() : say("not_sent", "The message could not be sent.");
            reply.classList.add("error");
          });
        }
        return readEvents(response.body.getReader(), reply);
      }).catch(function () {
        reply.textContent = say("connection_lost", "The connection was lost; check your network and try again.");
      }).finally(function () { reply.removeAttribute("aria-busy"); });
    });
  }

  function bubble(role, text) {
    var div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    chat.insertBefore(div, document.getElementById("end"));
    chat.scrollTop = chat.scrollHeight;
    return div;
  }

  function readEvents(reader, reply) {
    var decoder = new TextDecoder();
    var buffer = "";
    var content = document.createTextNode("");
    reply.appendChild(content);
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { return; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (part) {
          var name = (part.match(/^event: (.*)$/m) || [])[1];
          var data = (part.match(/^data: (.*)$/m) || [])[1];
          if (!data) { return; }
          var payload = JSON.parse(data);
          if (name === "delta") { content.textContent += payload.content; }
          if (name === "done") {
            content.textContent = payload.message.content;
            var usage = payload.usage;
            var meta = document.createElement("span");
            meta.className = "meta";
            meta.textContent = say("tokens", "{in} in · {out} out")
              .replace("{in}", usage.input_tokens).replace("{out}", usage.output_tokens) + " · $" +
              (usage.cost_micro_usd / 1e6).toFixed(4) +
              (payload.message.status === "failed" ? " · " + say("failed", "failed") : "");
            reply.appendChild(meta);
          }
          chat.scrollTop = chat.scrollHeight;
        });
        return pump();
      });
    }
    return pump();
  }
})();
