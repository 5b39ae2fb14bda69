/* Hutch web chat widget.
 *
 * Paste into a page:  <script src="https://HUTCH/widget.js" data-hutch-widget="wc_..." async></script>
 * It draws a chat bubble (inside a shadow root, so the page's styles and the widget's do not mix), keeps
 * the visitor's id in localStorage so the conversation continues across page loads, and streams replies
 * from Hutch as server-sent events. The paperclip attaches one file (an image, a voice recording or audio
 * file, a PDF or text file) to the next message; images show as thumbnails in the thread.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-hutch-widget]");
  if (!script) return;
  var token = script.getAttribute("data-hutch-widget");
  if (!token) return;
  var origin = new URL(script.src).origin;
  var api = origin + "/api/v1/widget/" + encodeURIComponent(token);
  var storageKey = "hutch-visitor-" + token;

  function visitorId() {
    var id = null;
    try { id = window.localStorage.getItem(storageKey); } catch (e) { /* storage may be blocked */ }
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      var bytes = new Uint8Array(18);
      window.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { window.localStorage.setItem(storageKey, id); } catch (e) { /* a fresh id each page then */ }
    }
    return id;
  }
  var visitor = visitorId();

  var css = [
    ":host { all: initial; }",
    ".bubble { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;",
    "  border: 0; background: var(--hutch-accent, #2f6fed); color: var(--hutch-accent-ink, #fff);",
    "  font-size: 26px; cursor: pointer; z-index: 2147483000;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".panel { position: fixed; right: 20px; bottom: 88px; width: 340px; max-width: calc(100vw - 40px);",
    "  height: 460px; max-height: calc(100vh - 120px); display: none; flex-direction: column; background: #fff;",
    "  border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.25); z-index: 2147483000; overflow: hidden;",
    "  font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2330; }",
    ".panel.open { display: flex; }",
    "header { display: flex; align-items: center; justify-content: space-between; padding: 10px 14px;",
    "  background: var(--hutch-accent, #2f6fed); color: var(--hutch-accent-ink, #fff); font-weight: 600; }",
    "header button { background: none; border: 0; color: var(--hutch-accent-ink, #fff); cursor: pointer;",
    "  font-size: 12px; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px; background: #f5f6f8; }",
    ".line { margin: 6px 0; padding: 8px 11px; border-radius: 10px; max-width: 85%; white-space: pre-wrap;",
    "  word-wrap: break-word; }",
    ".user { margin-left: auto; background: var(--hutch-accent, #2f6fed); color: var(--hutch-accent-ink, #fff); }",
    ".assistant, .human { background: #fff; border: 1px solid #e2e5ea; }",
    ".notice { color: #b3261e; font-size: 12px; text-align: center; }",
    "form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e2e5ea; }",
    "textarea { flex: 1; resize: none; height: 38px; padding: 8px; font: inherit; border: 1px solid #cfd4dc;",
    "  border-radius: 8px; }",
    "form button { padding: 0 14px; border: 0; border-radius: 8px; background: var(--hutch-accent, #2f6fed);",
    "  color: var(--hutch-accent-ink, #fff);",
    "  cursor: pointer; }",
    "form button:disabled { opacity: .5; cursor: default; }",
    "form .attach { padding: 0 10px; background: #e8edf9; color: #1d2330; font-size: 16px; }",
    "button:focus-visible, textarea:focus-visible { outline: 2px solid #1d4ed8; outline-offset: 2px; }",
    ".file { display: none; align-items: center; gap: 6px; padding: 4px 10px 0; font-size: 12px; }",
    ".file.chosen { display: flex; }",
    ".file button { border: 0; background: none; color: #b3261e; cursor: pointer; font-size: 12px; }",
    ".line img { display: block; max-width: 160px; max-height: 160px; margin-top: 4px; border-radius: 6px; }",
    ".powered { margin: 0; padding: 2px 8px 6px; font-size: 11px; color: #4f5868; text-align: center; }",
    ".sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }",
  ].join("\n");

  var host = document.createElement("div");
  host.setAttribute("data-hutch-chat", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" + css + "</style>" +
    '<button class="bubble" aria-label="Open chat" title="Chat">\u{1F4AC}</button>' +
    '<section class="panel" role="dialog" aria-label="Chat">' +
    '<header><span class="title">Chat</span><button class="reset" type="button">New conversation</button></header>' +
    '<div class="log" aria-live="polite"></div>' +
    '<div class="file" aria-live="polite"><span class="file-name"></span>' +
    '<button type="button" class="unattach" aria-label="Remove the attached file">Remove</button></div>' +
    '<form><button type="button" class="attach" aria-label="Attach a file" title="Attach a file">\u{1F4CE}</button>' +
    '<input class="sr" type="file" tabindex="-1" aria-hidden="true" ' +
    'accept="image/jpeg,image/png,image/webp,image/gif,audio/*,.pdf,.txt,.md,.html">' +
    '<textarea placeholder="Write a message" maxlength="4000" aria-label="Message"></textarea>' +
    '<button type="submit" class="send">Send</button></form>' +
    '<p class="powered" hidden></p></section>';

  var bubble = root.querySelector(".bubble");
  var panel = root.querySelector(".panel");
  var log = root.querySelector(".log");
  var form = root.querySelector("form");
  var input = root.querySelector("textarea");
  var send = root.querySelector(".send");
  var attach = root.querySelector(".attach");
  var picker = root.querySelector("input[type=file]");
  var chosen = root.querySelector(".file");
  var file = null; // the file attached to the next message
  var loaded = false;
  var greeting = "";
  // The widget's own words, replaced by the configuration's (the org's or the visitor's language).
  var t = {
    open_chat: "Open chat", chat: "Chat", new_conversation: "New conversation",
    remove_file: "Remove the attached file", remove: "Remove", attach_file: "Attach a file",
    write_message: "Write a message", message: "Message", send: "Send", image_sent: "Image sent: ",
    attached: "Attached: ", failed: "Something went wrong. Please try again.",
    unavailable: "The chat is not available right now.",
    not_sent: "The message could not be sent. Check your connection and try again.",
  };

  function speak(texts) {
    Object.keys(texts || {}).forEach(function (key) { if (key in t) t[key] = texts[key]; });
    bubble.setAttribute("aria-label", t.open_chat); bubble.title = t.chat;
    panel.setAttribute("aria-label", t.chat);
    root.querySelector(".reset").textContent = t.new_conversation;
    var unattach = root.querySelector(".unattach");
    unattach.setAttribute("aria-label", t.remove_file); unattach.textContent = t.remove;
    attach.setAttribute("aria-label", t.attach_file); attach.title = t.attach_file;
    input.placeholder = t.write_message; input.setAttribute("aria-label", t.message);
    send.textContent = t.send;
  }
  var known = 0; // messages of the conversation shown

  function line(role, text) {
    var div = document.createElement("div");
    div.className = "line " + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  // An image as a thumbnail under its message; other files by name (the text already says "[file: ...]").
  function showFile(div, kind, name, src) {
    if (kind !== "image") return;
    var img = document.createElement("img");
    img.src = src;
    img.alt = t.image_sent + name;
    img.onload = function () { log.scrollTop = log.scrollHeight; };
    div.appendChild(img);
  }

  function choose(picked) {
    file = picked || null;
    chosen.classList.toggle("chosen", !!file);
    chosen.querySelector(".file-name").textContent = file ? t.attached + file.name : "";
  }

  function detailOf(response) {
    return response.json().then(function (body) {
      return typeof body.detail === "string" ? body.detail : t.failed;
    }, function () { return t.failed; });
  }

  function load() {
    if (loaded) return;
    loaded = true;
    fetch(api).then(function (r) { return r.ok ? r.json() : null; }).then(function (config) {
      if (!config) return;
      root.querySelector(".title").textContent = config.agent_name;
      speak(config.texts);
      // The operator's brand: its colour, and the discreet credit line unless turned off.
      if (config.primary_color) {
        host.style.setProperty("--hutch-accent", config.primary_color);
        host.style.setProperty("--hutch-accent-ink", config.accent_ink || "#fff");
      }
      var powered = root.querySelector(".powered");
      if (config.powered_by) { powered.textContent = config.powered_by; powered.hidden = false; }
      greeting = config.greeting;
      return fetch(api + "/messages?visitor_id=" + visitor).then(function (r) { return r.json(); });
    }).then(function (history) {
      if (history) render(history);
    }).catch(function () { line("notice", t.unavailable); });
  }

  function render(history) {
    log.textContent = "";
    if (!history.items.length) line("assistant", greeting);
    history.items.forEach(function (m) {
      var div = line(m.role, m.content);
      (m.attachments || []).forEach(function (a) {
        showFile(div, a.kind, a.filename, origin + a.url + "?visitor_id=" + visitor);
      });
    });
    known = history.items.length;
  }

  // A person from the team may answer in the agent's place: their messages show within a few seconds.
  setInterval(function () {
    if (!loaded || send.disabled || !panel.classList.contains("open")) return;
    fetch(api + "/messages?visitor_id=" + visitor).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (history) { if (history && history.items.length !== known) render(history); })
      .catch(function () {});
  }, 5000);

  // Reads "event: x\ndata: {...}\n\n" frames from the streamed body and calls onEvent for each.
  function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var frames = buffer.split("\n\n");
        buffer = frames.pop();
        frames.forEach(function (frame) {
          var name = "message", data = "";
          frame.split("\n").forEach(function (row) {
            if (row.indexOf("event: ") === 0) name = row.slice(7);
            else if (row.indexOf("data: ") === 0) data += row.slice(6);
          });
          if (data) onEvent(name, JSON.parse(data));
        });
        return pump();
      });
    }
    return pump();
  }

  function ask(text, attached) {
    var mine = line("user", text || (attached ? attached.name : ""));
    send.disabled = true;
    var answer = null;
    var request = {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ visitor_id: visitor, text: text }),
    };
    if (attached) {
      if (/^image\//.test(attached.type)) showFile(mine, "image", attached.name, URL.createObjectURL(attached));
      var body = new FormData();
      body.append("visitor_id", visitor);
      body.append("text", text);
      body.append("file", attached);
      request = { method: "POST", headers: { "Accept": "text/event-stream" }, body: body };
    }
    fetch(api + "/messages", request).then(function (response) {
      if (!response.ok) return detailOf(response).then(function (detail) { line("notice", detail); });
      answer = line("assistant", "\u2026");
      var written = "";
      return readEvents(response.body, function (name, data) {
        if (name === "delta") { written += data.content; answer.textContent = written; }
        if (name === "done" && data.status === "held") { answer.remove(); return; }
        if (name === "done") answer.textContent = data.content;
        log.scrollTop = log.scrollHeight;
      });
    }).catch(function () {
      line("notice", t.not_sent);
    }).then(function () { send.disabled = false; input.focus(); });
  }

  bubble.addEventListener("click", function () {
    panel.classList.toggle("open");
    if (panel.classList.contains("open")) { load(); input.focus(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if ((!text && !file) || send.disabled) return;
    var attached = file;
    input.value = "";
    choose(null);
    picker.value = "";
    ask(text, attached);
  });
  attach.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () { choose(picker.files[0]); input.focus(); });
  root.querySelector(".unattach").addEventListener("click", function () {
    choose(null);
    picker.value = "";
    attach.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  root.querySelector(".reset").addEventListener("click", function () {
    fetch(api + "/reset", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ visitor_id: visitor }),
    }).then(function () { log.textContent = ""; line("assistant", greeting); });
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
