/* frontdesk web chat: the dialog, the socket and the visitor token. Loaded by
 * /widget.js on first open, into the launcher's shadow root.
 *
 * The visitor token (random, 128 bits) is created and saved in localStorage only
 * when the visitor sends a first message, and it travels only inside the socket's
 * first frame, never in a URL. Messages not yet acknowledged are resent with the
 * same client_id after a reconnect; the server stores each once. */
(function (w, d) {
  "use strict";
  var KEY = "frontdesk.visitor";
  var MAX_CHARS = 2000;

  function element(tag, attributes, text) {
    var node = d.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) node.textContent = text;
    return node;
  }

  function randomToken() {
    var bytes = new Uint8Array(16);
    w.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function readToken() {
    try { return w.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  /* Text with http(s) links made clickable; never parsed as HTML. */
  function fillText(node, text) {
    var pattern = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g, at = 0, found;
    while ((found = pattern.exec(text))) {
      node.appendChild(d.createTextNode(text.slice(at, found.index)));
      var link = element("a", { href: found[0], target: "_blank", rel: "noopener noreferrer" }, found[0]);
      node.appendChild(link);
      at = found.index + found[0].length;
    }
    node.appendChild(d.createTextNode(text.slice(at)));
  }

  w.Frontdesk._start(function (context) {
    var root = context.root, launcher = context.launcher, user = context.user;
    var socketUrl = context.base.replace(/^http/, "ws") + "/chat/socket";
    var visitor = readToken();
    var socket = null, ready = false, retries = 0, retryTimer = null, idleClosed = false;
    var lastSeen = null, shown = {}, pending = [], isOpen = false, typingTimer = null;
    var styled = false, openWhenStyled = false;

    var style = element("link", { rel: "stylesheet", href: context.base + "/chat/app.css?v=" + context.version });
    style.addEventListener("load", function () { styled = true; if (openWhenStyled) open(); });
    root.appendChild(style);
    setTimeout(function () { styled = true; if (openWhenStyled) open(); }, 3000);

    var panel = element("div", { "class": "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "fd-title", hidden: "" });
    var header = element("div", { "class": "header" });
    var titles = element("div", { "class": "titles" });
    titles.appendChild(element("h2", { id: "fd-title" }, context.options.title));
    var status = element("p", { "class": "status" }, "We usually answer right away");
    titles.appendChild(status);
    var closeButton = element("button", { type: "button", "class": "close", "aria-label": "Close chat" });
    closeButton.innerHTML = '<svg aria-hidden="true" width="20" height="20" viewBox="0 0 24 24"><path d="M6 6l12 12M18 6L6 18" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>';
    header.appendChild(titles);
    header.appendChild(closeButton);

    var log = element("div", { "class": "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "0" });
    var greeting = element("p", { "class": "greeting" }, "Hi! Ask us anything about our products, orders, delivery or opening hours.");
    log.appendChild(greeting);
    var typing = element("p", { "class": "typing", "aria-hidden": "true", hidden: "" });
    typing.innerHTML = "<span></span><span></span><span></span>";
    var note = element("p", { "class": "note", role: "status" });

    var form = element("form", { "class": "compose" });
    var picker = element("input", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp,image/heic", "class": "sr", tabindex: "-1", "aria-hidden": "true" });
    var attachButton = element("button", { type: "button", "class": "attach", "aria-label": "Send a photo" });
    attachButton.innerHTML = '<svg aria-hidden="true" width="20" height="20" viewBox="0 0 24 24" fill="currentColor"><path d="M9 4l-1.8 2H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2h-3.2L15 4H9zm3 4.5a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9zm0 2a2.5 2.5 0 1 0 0 5 2.5 2.5 0 0 0 0-5z"/></svg>';
    var label = element("label", { "for": "fd-input", "class": "sr" }, "Your message");
    var input = element("textarea", { id: "fd-input", rows: "1", maxlength: String(MAX_CHARS), placeholder: "Type your question…", autocomplete: "off" });
    var sendButton = element("button", { type: "submit", "class": "send", "aria-label": "Send" });
    sendButton.innerHTML = '<svg aria-hidden="true" width="20" height="20" viewBox="0 0 24 24" fill="currentColor"><path d="M3 20.5l18-8.5L3 3.5v6.6l12 1.9-12 1.9z"/></svg>';
    form.appendChild(picker);
    form.appendChild(attachButton);
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(sendButton);

    panel.appendChild(header);
    panel.appendChild(log);
    panel.appendChild(typing);
    panel.appendChild(note);
    panel.appendChild(form);
    root.appendChild(panel);

    function setNote(text) { note.textContent = text || ""; }

    function showTyping(on) {
      clearTimeout(typingTimer);
      typing.hidden = !on;
      if (on) typingTimer = setTimeout(function () { typing.hidden = true; }, 20000);
    }

    function scrollDown() { log.scrollTop = log.scrollHeight; }

    function bubble(from, text) {
      var item = element("div", { "class": "msg " + from });
      var who = { customer: "You", assistant: "Assistant", human: "Staff" }[from] || "Assistant";
      item.appendChild(element("span", { "class": from === "customer" ? "who sr" : "who" }, who + ": "));
      var body = element("span", { "class": "body" });
      /* A photo's marker: the visitor knows what they sent. */
      fillText(body, String(text).replace(/\[attachment:[0-9a-f]{32}\]/g, "\uD83D\uDCF7 Photo"));
      item.appendChild(body);
      return item;
    }

    /* Server messages go above the visitor's unacknowledged ones, which are newest. */
    function place(item) {
      greeting.hidden = true;
      log.insertBefore(item, pending.length ? pending[0].item : null);
      scrollDown();
    }

    function receive(frame) {
      if (frame.type === "message") {
        lastSeen = frame.id;
        if (shown[frame.id]) return;
        var item = bubble(frame.from, frame.text);
        item.title = new Date(frame.at).toLocaleString();
        shown[frame.id] = item;
        place(item);
        if (frame.from !== "customer") {
          showTyping(false);
          if (!isOpen) launcher.classList.add("unread");
        }
      } else if (frame.type === "ack") {
        lastSeen = frame.id;
        var index = pending.findIndex(function (p) { return p.clientId === frame.client_id; });
        if (index < 0) return;
        var sent = pending.splice(index, 1)[0];
        if (shown[frame.id]) {
          sent.item.remove(); /* the replay already showed it */
        } else {
          sent.item.classList.remove("sending");
          shown[frame.id] = sent.item;
          showTyping(true);
        }
      } else if (frame.type === "ready") {
        ready = true;
        retries = 0;
        status.textContent = "We usually answer right away";
        pending.forEach(transmit);
      } else if (frame.type === "error") {
        failed(frame);
      }
    }

    function failed(frame) {
      var item = frame.client_id && pending.find(function (p) { return p.clientId === frame.client_id; });
      if (frame.code === "rate_limited" || frame.code === "unavailable") {
        setNote(frame.code === "rate_limited" ? "Slow down a little: sending again in a moment." : "Having trouble: retrying…");
        setTimeout(function () { if (item && pending.indexOf(item) >= 0) transmit(item); }, 5000);
      } else if (item) {
        pending.splice(pending.indexOf(item), 1);
        item.item.classList.remove("sending");
        item.item.classList.add("failed");
        setNote(frame.message);
      } else if (frame.code === "identity") {
        setNote("We could not confirm your account. Please reload the page.");
      } else {
        setNote(frame.message);
      }
    }

    function transmit(item) {
      if (ready && socket && socket.readyState === 1) {
        socket.send(JSON.stringify({ type: "message", client_id: item.clientId, text: item.text }));
      }
    }

    function connect() {
      if (!visitor || (socket && socket.readyState < 2)) return;
      clearTimeout(retryTimer);
      idleClosed = false;
      ready = false;
      status.textContent = "Connecting…";
      var current = socket = new WebSocket(socketUrl);
      current.onopen = function () {
        var hello = { type: "hello", visitor: visitor, last_seen: lastSeen };
        if (user) hello.user = user;
        current.send(JSON.stringify(hello));
      };
      current.onmessage = function (event) {
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        receive(frame);
      };
      current.onclose = function (event) {
        if (socket !== current) return;
        socket = null;
        ready = false;
        if (event.code === 1008) { status.textContent = "Disconnected"; return; }
        if (event.reason === "idle") { idleClosed = true; status.textContent = ""; return; }
        if (!isOpen && !pending.length) return;
        status.textContent = "Reconnecting…";
        var delay = Math.min(30000, 1000 * Math.pow(2, retries++)) * (0.5 + Math.random() / 2);
        retryTimer = setTimeout(connect, delay);
      };
    }

    function submit() {
      var text = input.value.trim();
      if (!text) return;
      if (text.length > MAX_CHARS) { setNote("Messages are limited to " + MAX_CHARS + " characters."); return; }
      if (!visitor) {
        visitor = randomToken();
        try { w.localStorage.setItem(KEY, visitor); } catch (e) { /* this page only */ }
      }
      var clientId = w.crypto.randomUUID ? w.crypto.randomUUID() : randomToken();
      var item = { clientId: clientId, text: text, item: bubble("customer", text) };
      item.item.classList.add("sending");
      greeting.hidden = true;
      log.appendChild(item.item);
      pending.push(item);
      scrollDown();
      input.value = "";
      setNote("");
      if (ready) transmit(item); else connect();
    }

    /* A photo goes by POST (multipart, no preflight), with the visitor token
     * in the body; the server checks it, stores it and answers like a message. */
    function sendPhoto(file) {
      if (!file) return;
      if (!visitor) {
        visitor = randomToken();
        try { w.localStorage.setItem(KEY, visitor); } catch (e) { /* this page only */ }
      }
      var clientId = w.crypto.randomUUID ? w.crypto.randomUUID() : randomToken();
      var item = bubble("customer", "\uD83D\uDCF7 Photo");
      item.classList.add("sending");
      greeting.hidden = true;
      log.appendChild(item);
      scrollDown();
      setNote("");
      var body = new FormData();
      body.append("visitor", visitor);
      body.append("client_id", clientId);
      if (user) { body.append("user_id", user.id); body.append("user_signature", user.signature); }
      body.append("photo", file, file.name || "photo");
      fetch(context.base + "/chat/upload", { method: "POST", body: body }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok) throw new Error(answer.message || "The photo could not be sent.");
          if (shown[answer.id]) { item.remove(); return; }
          item.classList.remove("sending");
          shown[answer.id] = item;
          showTyping(true);
          if (!socket) connect();
        });
      }).catch(function (error) {
        item.classList.remove("sending");
        item.classList.add("failed");
        setNote(error.message || "The photo could not be sent.");
      });
    }

    attachButton.addEventListener("click", function () { picker.click(); });
    picker.addEventListener("change", function () {
      sendPhoto(picker.files && picker.files[0]);
      picker.value = "";
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    });
    closeButton.addEventListener("click", close);

    /* Focus stays inside the dialog while it is open; Escape closes it. */
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); close(); return; }
      if (event.key !== "Tab") return;
      var focusable = Array.prototype.filter.call(
        panel.querySelectorAll("button, textarea, a[href], [tabindex='0']"),
        function (node) { return !node.disabled && node.offsetParent !== null; });
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1], active = root.activeElement;
      if (event.shiftKey && (active === first || !panel.contains(active))) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && (active === last || !panel.contains(active))) { event.preventDefault(); first.focus(); }
    });
    d.addEventListener("visibilitychange", function () {
      if (!d.hidden && (isOpen || pending.length) && (idleClosed || !socket)) connect();
    });

    function open() {
      if (!styled) { openWhenStyled = true; return; }
      openWhenStyled = false;
      if (isOpen) return;
      isOpen = true;
      panel.hidden = false;
      launcher.hidden = true;
      launcher.classList.remove("unread");
      launcher.setAttribute("aria-expanded", "true");
      scrollDown();
      input.focus();
      connect();
    }

    function close() {
      openWhenStyled = false;
      if (!isOpen) return;
      isOpen = false;
      panel.hidden = true;
      launcher.hidden = false;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }

    /* A new identity (sign in, sign out) is a different conversation. */
    function restart() {
      if (socket) { var old = socket; socket = null; old.close(1000); }
      ready = false;
      lastSeen = null;
      shown = {};
      Array.prototype.slice.call(log.querySelectorAll(".msg")).forEach(function (node) {
        if (!pending.some(function (p) { return p.item === node; })) node.remove();
      });
      greeting.hidden = pending.length > 0;
      setNote("");
      if (isOpen || pending.length) connect();
    }

    return {
      open: open,
      close: close,
      identify: function (claim) { user = claim; restart(); },
      reset: function () {
        user = null;
        visitor = null;
        pending.forEach(function (p) { p.item.remove(); });
        pending = [];
        restart();
      }
    };
  });
})(window, document);
