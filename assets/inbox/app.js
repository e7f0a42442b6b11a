// frontdesk's owner inbox: the one hand-written script of the inbox pages
// (docs/inbox.md). No build step, no framework, nothing from elsewhere.
//
// - The same HTML shell serves `/`, `/conversations/{id}` and `/knowledge`; the
//   script picks the view from the path and moves between views with
//   history.pushState, so the event stream stays open.
// - Everything on screen comes from the JSON API. Every event on
//   `/api/events` makes it re-read the lists and, when the event concerns it,
//   the open conversation.
// - Customer text is data: every node is built with createElement/textContent,
//   never innerHTML.
// - On the sign-in and first-run pages it only shows the error the URL names
//   and copies the setup token.
(function () {
  "use strict";

  // ---------- small helpers ----------

  function byId(id) { return document.getElementById(id); }

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attributes) {
    var node = document.createElement(tag);
    if (attributes) {
      Object.keys(attributes).forEach(function (key) {
        var value = attributes[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "className") node.className = value;
        else if (key === "text") node.textContent = value;
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  var CHANNELS = {
    whatsapp: "WhatsApp", messenger: "Messenger", instagram: "Instagram",
    sms: "SMS", email: "Email", webchat: "Web chat"
  };
  var REASONS = {
    human_requested: "asked for a person",
    complaint: "complaint",
    sensitive: "sensitive (allergy or legal)",
    high_value: "large or custom order",
    out_of_scope: "not covered by your files",
    low_confidence: "the bot was not sure",
    delivery_unknown: "a reply may not have been delivered"
  };
  var STATES = {
    received: "received", queued: "queued", sent: "sent", delivered: "delivered",
    read: "read", failed: "failed", unknown: "delivery unknown"
  };

  function channelName(channel) { return CHANNELS[channel] || channel || ""; }
  function reasonText(reason) { return reason ? (REASONS[reason] || reason.replace(/_/g, " ")) : ""; }
  function contactName(contact) {
    if (!contact) return "Unknown";
    return contact.name || contact.address || "Unknown";
  }

  /** "just now", "4 min", "2 h 5 min", "3 days". */
  function duration(ms) {
    var minutes = Math.floor(Math.max(0, ms) / 60000);
    if (minutes < 1) return "under a minute";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
    var days = Math.floor(hours / 24);
    return days + (days === 1 ? " day" : " days");
  }

  function ago(ms) {
    var diff = Date.now() - ms;
    return diff < 60000 ? "just now" : duration(diff) + " ago";
  }

  /** Today: "14:05"; this year: "3 Mar 14:05"; else with the year. */
  function clock(ms) {
    var date = new Date(ms), now = new Date();
    var time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (date.toDateString() === now.toDateString()) return time;
    var options = { day: "numeric", month: "short" };
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options) + " " + time;
  }

  /** "5 h 03 min 12 s" for the reply-window countdown. */
  function countdown(ms) {
    var seconds = Math.max(0, Math.floor(ms / 1000));
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var rest = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (days) return days + " d " + hours + " h " + two(minutes) + " min";
    if (hours) return hours + " h " + two(minutes) + " min " + two(rest) + " s";
    return minutes + " min " + two(rest) + " s";
  }

  // ---------- the sign-in and first-run pages ----------

  function signinPage() {
    var query = new URLSearchParams(location.search);
    var errorBox = byId("login-error");
    var code = query.get("error");
    if (errorBox && code) {
      errorBox.textContent = errorBox.getAttribute("data-error-" + code) || errorBox.getAttribute("data-error-1");
      errorBox.hidden = false;
      var password = byId("password");
      if (password) password.focus();
    }
    var token = byId("token");
    if (token) token.value = query.get("token") || "";
    var setup = byId("setup-form");
    if (setup) {
      setup.addEventListener("submit", function (event) {
        if (byId("password").value !== byId("password-again").value) {
          event.preventDefault();
          errorBox.textContent = errorBox.getAttribute("data-error-mismatch");
          errorBox.hidden = false;
        }
      });
    }
  }

  if (document.body.classList.contains("signin")) {
    signinPage();
    return;
  }
  if (!document.body.classList.contains("inbox")) return;

  // ---------- state ----------

  var state = {
    csrf: null,
    view: "list",            // list | conversation | knowledge
    openId: null,            // the conversation shown, from the path
    query: "",               // the search over every message (?q=)
    needsYou: [],
    all: [],
    listsLoaded: false,
    conversation: null,      // the open conversation's detail
    canned: [],
    selected: null,          // {list: "needs-you"|"all", id} for j/k
    queueItemsSeen: null,    // queue item ids already known (for notifications)
    mine: {},                // message ids this page sent (others' replies are flagged)
    knownMessages: {},       // message ids of the open conversation already shown
    events: null,
    eventsOpen: false,
    shortcuts: localStorage.getItem("frontdesk.shortcuts") !== "off"
  };

  // ---------- the API ----------

  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (body && body.message) || ("the server answered " + status);
  }

  function api(method, path, body, retried) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = state.csrf || "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method,
      headers: headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 401) {
        location.assign("/login");
        throw new ApiError(401, { message: "signed out" });
      }
      var type = response.headers.get("content-type") || "";
      var parsed = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parsed.then(function (data) {
        if (response.status === 403 && data && data.error === "csrf" && !retried) {
          // The session changed under us (signed in again elsewhere): refresh the token once.
          return loadSession().then(function () { return api(method, path, body, true); });
        }
        if (!response.ok) throw new ApiError(response.status, data);
        return data;
      });
    });
  }

  function loadSession() {
    return api("GET", "/api/session").then(function (session) {
      state.csrf = session.csrf;
      document.querySelector("#logout input[name=csrf]").value = session.csrf || "";
    });
  }

  var flashTimer = null;
  function flash(text) {
    var box = byId("flash");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  function failed(error) {
    if (error && error.status === 401) return;
    flash("That did not work: " + ((error && error.message) || error));
  }

  // ---------- views and routing ----------

  function route(url, push) {
    var target = new URL(url, location.href);
    if (push) history.pushState(null, "", target.pathname + target.search);
    var match = target.pathname.match(/^\/conversations\/([^/]+)\/?$/);
    var previous = state.openId;
    if (target.pathname === "/knowledge") {
      state.view = "knowledge";
      state.openId = null;
    } else if (match) {
      state.view = "conversation";
      state.openId = decodeURIComponent(match[1]);
    } else {
      state.view = "list";
      state.openId = null;
      if (target.searchParams.has("q") || push) state.query = target.searchParams.get("q") || "";
    }
    byId("search-input").value = state.query;
    document.body.classList.remove("view-list", "view-conversation", "view-knowledge");
    document.body.classList.add("view-" + state.view);
    byId("knowledge-pane").hidden = state.view !== "knowledge";
    document.querySelectorAll("[data-nav]").forEach(function (link) {
      var current = link.getAttribute("data-nav") === (state.view === "knowledge" ? "knowledge" : "inbox");
      if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
    });
    if (state.openId !== previous) {
      state.conversation = null;
      state.knownMessages = {};
      clear(byId("messages"));
      byId("others-replied").hidden = true;
      byId("composer-error").hidden = true;
      byId("reply").value = "";
      byId("canned").hidden = true;
      byId("note-form").hidden = true;
      if (state.openId) state.selected = { list: selectedListOf(state.openId), id: state.openId };
    }
    renderConversation();
    renderLists();
    if (state.view === "knowledge") loadKnowledge();
    else {
      loadLists();
      if (state.openId) loadConversation(true);
    }
  }

  function selectedListOf(id) {
    return state.needsYou.some(function (c) { return c.id === id; }) ? "needs-you" : "all";
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest && event.target.closest("a[href]");
    if (!link || link.target || link.origin !== location.origin) return;
    if (!/^\/($|conversations\/|knowledge$)/.test(link.pathname)) return;
    event.preventDefault();
    route(link.href, true);
  });
  window.addEventListener("popstate", function () { route(location.href, false); });

  // ---------- the lists ----------

  var listLoading = null, listAgain = false;

  /** Re-reads both lists; a call made while one is in flight runs once more after it. */
  function loadLists() {
    if (listLoading) { listAgain = true; return listLoading; }
    var search = state.query ? "&q=" + encodeURIComponent(state.query) : "";
    listLoading = Promise.all([
      api("GET", "/api/conversations?view=needs_you"),
      api("GET", "/api/conversations?view=all" + search)
    ]).then(function (answers) {
      state.needsYou = answers[0].conversations || [];
      state.all = answers[1].conversations || [];
      state.listsLoaded = true;
      notifyNewQueueItems();
      renderLists();
    }).catch(failed).then(function () {
      listLoading = null;
      if (listAgain) { listAgain = false; loadLists(); }
    });
    return listLoading;
  }

  function renderLists() {
    var needs = byId("needs-you"), all = byId("all");
    renderItems(needs, state.needsYou, "needs-you");
    renderItems(all, state.all, "all");
    var count = state.needsYou.length;
    var badge = byId("needs-you-count");
    badge.textContent = String(count);
    badge.classList.toggle("some", count > 0);
    byId("needs-you-empty").hidden = !state.listsLoaded || count > 0;
    var allEmpty = byId("all-empty");
    allEmpty.hidden = !state.listsLoaded || state.all.length > 0;
    allEmpty.textContent = state.query ? "No message contains “" + state.query + "”." : "No conversations yet.";
    byId("all-hint").textContent = state.query ? "with “" + state.query + "”" : "";
    document.title = (count ? "(" + count + ") " : "") + "frontdesk";
  }

  function renderItems(list, conversations, kind) {
    clear(list);
    conversations.forEach(function (summary) {
      list.appendChild(renderItem(summary, kind));
    });
  }

  function renderItem(summary, kind) {
    var item = summary.queue_item;
    var li = el("li", { className: "item", "data-id": summary.id, "data-list": kind });
    if (summary.unread > 0) li.classList.add("unread");
    if (state.openId === summary.id) li.classList.add("open");
    if (state.selected && state.selected.id === summary.id && state.selected.list === kind) li.classList.add("selected");
    var when;
    if (kind === "needs-you") {
      var since = (item && item.created_ms) || summary.waiting_since_ms || summary.updated_ms;
      when = el("span", { className: "when", title: new Date(since).toLocaleString(), text: "waited " + duration(Date.now() - since) });
    } else {
      when = el("span", { className: "when", title: new Date(summary.updated_ms).toLocaleString(), text: clock(summary.updated_ms) });
    }
    var line1 = el("span", { className: "line1" },
      el("span", { className: "name", text: contactName(summary.contact) }),
      summary.unread > 0 ? el("span", { className: "badge unread-count", title: summary.unread + " unread", text: String(summary.unread) }) : null);
    var meta = el("span", { className: "meta" },
      el("span", { className: "channel", text: channelName(summary.channel) }),
      summary.owner === "human" ? el("span", { className: "owner", text: "you answer" }) : null,
      summary.status === "resolved" ? el("span", { text: "resolved" }) : null,
      when);
    var link = el("a", { href: "/conversations/" + encodeURIComponent(summary.id) }, line1, meta);
    if (kind === "needs-you" && item) {
      var why = reasonText(item.reason) + (item.summary ? ": " + item.summary : "");
      link.appendChild(el("span", { className: "why", text: why }));
      var fields = item.fields ? Object.keys(item.fields) : [];
      if (fields.length) {
        var ul = el("ul", { className: "fields", "aria-label": "Collected details" });
        fields.forEach(function (key) {
          ul.appendChild(el("li", {}, key.replace(/_/g, " ") + ": ", fieldValue(item.fields[key], true)));
        });
        link.appendChild(ul);
      }
    }
    var last = summary.last_message;
    // In Needs you the reason and summary say it; the bot's hand-over message would only repeat.
    var repeats = kind === "needs-you" && item && last && (last.direction === "out" || last.text === item.summary);
    if (last && !repeats) {
      var prefix = last.direction === "out" ? "↩ " : "";
      link.appendChild(el("span", { className: "line2", text: prefix + last.text }));
    }
    li.appendChild(link);
    return li;
  }

  // ---------- notifications ----------

  var notifyButton = byId("notify");

  function renderNotifyButton() {
    if (!("Notification" in window)) { notifyButton.hidden = true; return; }
    notifyButton.hidden = false;
    var permission = Notification.permission;
    notifyButton.disabled = permission !== "default";
    notifyButton.textContent = permission === "granted" ? "Notifications on"
      : permission === "denied" ? "Notifications blocked" : "Turn on notifications";
  }

  notifyButton.addEventListener("click", function () {
    // Asked only from this button, never on load.
    var asked = Notification.requestPermission(renderNotifyButton);
    if (asked && asked.then) asked.then(renderNotifyButton);
  });

  /** A browser notification for each queue item that is new since the last look, when the page is hidden. */
  function notifyNewQueueItems() {
    var ids = {};
    state.needsYou.forEach(function (summary) {
      if (summary.queue_item) ids[summary.queue_item.id] = summary;
    });
    var seen = state.queueItemsSeen;
    state.queueItemsSeen = ids;
    if (!seen || !document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    Object.keys(ids).forEach(function (id) {
      if (seen[id]) return;
      var summary = ids[id];
      var body = reasonText(summary.queue_item.reason) + (summary.last_message ? " — " + summary.last_message.text : "");
      var note = new Notification("Needs you: " + contactName(summary.contact), { body: body, tag: "queue-" + id });
      note.onclick = function () {
        window.focus();
        route("/conversations/" + encodeURIComponent(summary.id), true);
        note.close();
      };
    });
  }

  // ---------- one conversation ----------

  var conversationLoading = null, conversationAgain = false;

  function loadConversation(markRead) {
    var id = state.openId;
    if (!id) return Promise.resolve();
    if (conversationLoading) { conversationAgain = true; return conversationLoading; }
    conversationLoading = api("GET", "/api/conversations/" + encodeURIComponent(id)).then(function (detail) {
      if (state.openId !== id) return;
      state.conversation = detail;
      renderConversation();
      if (detail.unread > 0 && !document.hidden) {
        api("POST", "/api/conversations/" + encodeURIComponent(id) + "/read").catch(failed);
      }
    }).catch(function (error) {
      if (error.status === 404) {
        state.conversation = null;
        renderConversation();
        byId("conversation-placeholder").textContent = "This conversation does not exist.";
        return;
      }
      failed(error);
    }).then(function () {
      conversationLoading = null;
      if (conversationAgain) { conversationAgain = false; loadConversation(false); }
    });
    return conversationLoading;
  }

  function conversationPath(suffix) {
    return "/api/conversations/" + encodeURIComponent(state.openId) + suffix;
  }

  function renderConversation() {
    var detail = state.conversation;
    var article = byId("conversation");
    var placeholder = byId("conversation-placeholder");
    if (!detail || detail.id !== state.openId) {
      article.hidden = true;
      placeholder.hidden = false;
      placeholder.textContent = state.openId ? "Loading…" : "Pick a conversation: j and k move, Enter opens, ? lists every shortcut.";
      return;
    }
    placeholder.hidden = true;
    article.hidden = false;
    var name = contactName(detail.contact);
    byId("conversation-name").textContent = name;
    var meta = [channelName(detail.channel)];
    if (detail.contact && detail.contact.address && detail.contact.address !== name) meta.push(detail.contact.address);
    meta.push(detail.owner === "human" ? "you are answering" : "the bot is answering");
    meta.push(detail.status);
    byId("conversation-meta").textContent = meta.join(" · ");
    if (state.view === "conversation") document.title = (state.needsYou.length ? "(" + state.needsYou.length + ") " : "") + "frontdesk";

    byId("take-over").disabled = detail.owner === "human";
    byId("hand-back").disabled = detail.owner === "bot" && !detail.queue_item;
    byId("resolve").disabled = detail.status === "resolved" && !detail.queue_item;

    renderQueueInfo(detail);
    renderWindow();
    renderTimeline(detail);
    renderComposer(detail);
  }

  function renderQueueInfo(detail) {
    var box = byId("queue-info");
    clear(box);
    var item = detail.queue_item;
    box.hidden = !item;
    if (!item) return;
    box.appendChild(el("p", { className: "why" },
      el("strong", { text: "Needs you: " + reasonText(item.reason) }),
      item.summary ? " — " + item.summary : "",
      " (waiting " + duration(Date.now() - item.created_ms) + ")"));
    var keys = item.fields ? Object.keys(item.fields) : [];
    if (keys.length) {
      var list = el("dl", { "aria-label": "Collected details" });
      keys.forEach(function (key) {
        list.appendChild(el("dt", { text: key.replace(/_/g, " ") }));
        list.appendChild(el("dd", {}, fieldValue(item.fields[key])));
      });
      box.appendChild(list);
    }
  }

  var windowRefetched = false;

  /** The 24-hour window as a live countdown (called every second). */
  function renderWindow() {
    var box = byId("window-info");
    var detail = state.conversation;
    var window_ = detail && detail.window;
    if (!window_) { box.hidden = true; return; }
    box.hidden = false;
    var left = window_.closes_ms - Date.now();
    var open = window_.open && left > 0;
    box.classList.toggle("closed", !open);
    var channel = channelName(window_.channel);
    if (open) {
      box.textContent = channel + " reply window closes in " + countdown(left) + " (at " + clock(window_.closes_ms) + ").";
      windowRefetched = false;
    } else {
      box.textContent = channel + " reply window closed " + (window_.closes_ms ? ago(window_.closes_ms) : "") +
        ": the customer has to write again first" + (detail.templates && detail.templates.length ? ", or send an approved template." : ".");
      if (window_.open && !windowRefetched) {
        // It just ran out here: ask the server, which then offers the templates.
        windowRefetched = true;
        loadConversation(false);
      }
    }
  }

  function timelineEntries(detail) {
    var entries = [];
    (detail.messages || []).forEach(function (message) {
      entries.push({ key: "m-" + message.id, at: message.created_ms, message: message });
    });
    (detail.notes || []).forEach(function (note) {
      entries.push({ key: "n-" + note.id, at: note.created_ms, note: note });
    });
    entries.sort(function (a, b) { return a.at - b.at; });
    return entries;
  }

  /** Updates the history in place: unchanged entries keep their nodes. */
  function renderTimeline(detail) {
    var list = byId("messages");
    var scroller = scrollContainer();
    var nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
    var first = !list.firstChild;
    var existing = {};
    Array.prototype.forEach.call(list.children, function (node) { existing[node.getAttribute("data-key")] = node; });
    var added = false, othersReplied = false;
    var previous = null;
    timelineEntries(detail).forEach(function (entry) {
      var signature = JSON.stringify(entry.message || entry.note);
      var node = existing[entry.key];
      delete existing[entry.key];
      if (!node || node.getAttribute("data-signature") !== signature) {
        var fresh = entry.message ? renderMessage(entry.message, detail) : renderNote(entry.note);
        fresh.setAttribute("data-key", entry.key);
        fresh.setAttribute("data-signature", signature);
        if (node) {
          // Keep the node (tests and screen readers hold on to it); swap its insides.
          while (node.firstChild) node.removeChild(node.firstChild);
          while (fresh.firstChild) node.appendChild(fresh.firstChild);
          node.className = fresh.className;
          node.setAttribute("data-signature", signature);
          node.setAttribute("aria-label", fresh.getAttribute("aria-label") || "");
        } else {
          node = fresh;
          added = true;
          var message = entry.message;
          if (!first && message && message.direction === "out" && message.author === "human" && !state.mine[message.id] && !state.knownMessages[message.id]) {
            othersReplied = true;
          }
        }
      }
      if (entry.message) state.knownMessages[entry.message.id] = true;
      var expected = previous ? previous.nextSibling : list.firstChild;
      if (expected !== node) list.insertBefore(node, expected);
      previous = node;
    });
    Object.keys(existing).forEach(function (key) { list.removeChild(existing[key]); });
    if (othersReplied && byId("reply").value.trim()) byId("others-replied").hidden = false;
    if (added && (first || nearBottom || state.toBottom)) {
      scroller.scrollTop = scroller.scrollHeight;
      state.toBottom = false;
    }
  }

  function scrollContainer() {
    var pane = byId("conversation-pane");
    return getComputedStyle(pane).overflowY === "visible" ? document.scrollingElement : pane;
  }

  var ATTACHMENT_ID = /^[0-9a-f]{32}$/;

  /** A stored photo: a thumbnail that opens the full picture (owner only). */
  function photo(id) {
    var url = "/api/attachments/" + id;
    return el("a", { href: url, target: "_blank", rel: "noopener", className: "photo" },
      el("img", { src: url, alt: "Photo from the customer", loading: "lazy" }));
  }

  /** One `[attachment:ID]` marker: the photo, why it was not kept, or that it is on its way. */
  function attachmentNode(attachment) {
    if (!attachment) return el("span", { className: "photo-note", text: "[photo]" });
    if (attachment.status === "stored") return photo(attachment.id);
    if (attachment.status === "failed") {
      return el("span", { className: "photo-note failed", text: "Photo not kept: " + (attachment.error || "unknown reason") });
    }
    return el("span", { className: "photo-note", text: "Photo arriving…" });
  }

  /** The message text with its photo markers shown as photos (text stays text). */
  function messageText(message) {
    var box = el("p", { className: "text" });
    var known = {};
    (message.attachments || []).forEach(function (attachment) { known[attachment.id] = attachment; });
    var pattern = /\[attachment:([0-9a-f]{32})\]/g, at = 0, found;
    while ((found = pattern.exec(message.text))) {
      box.appendChild(document.createTextNode(message.text.slice(at, found.index)));
      box.appendChild(attachmentNode(known[found[1]]));
      at = pattern.lastIndex;
    }
    box.appendChild(document.createTextNode(message.text.slice(at)));
    return box;
  }

  /** A collected field's value: a photo field holds the photo's id. Inside a
   *  list row (itself a link) the thumbnail is a plain image. */
  function fieldValue(value, inLink) {
    if (typeof value !== "string" || !ATTACHMENT_ID.test(value)) return String(value);
    if (!inLink) return photo(value);
    return el("span", { className: "photo small" },
      el("img", { src: "/api/attachments/" + value, alt: "Photo from the customer", loading: "lazy" }));
  }

  function renderMessage(message, detail) {
    var author = message.author === "customer" ? contactName(detail.contact)
      : message.author === "bot" ? "Bot" : "You";
    var li = el("li", {
      className: "message " + message.direction + " " + message.author,
      "data-id": message.id,
      "aria-label": author + ", " + clock(message.created_ms)
    });
    li.appendChild(el("p", { className: "by" }, author + " · ", el("time", {
      datetime: new Date(message.created_ms).toISOString(),
      title: new Date(message.created_ms).toLocaleString(),
      text: clock(message.created_ms)
    })));
    li.appendChild(messageText(message));
    var details = el("p", { className: "details" });
    if (message.author === "bot" && message.action) {
      details.appendChild(el("span", { className: "action", text: message.action === "escalate" ? "handed to you" : "answered" }));
      if (message.reason) details.appendChild(el("span", { className: "reason", text: reasonText(message.reason) }));
      if (typeof message.confidence === "number") {
        details.appendChild(el("span", { className: "confidence", text: "confidence " + message.confidence.toFixed(2) }));
      }
    }
    if (message.direction === "out") {
      var stateText = STATES[message.status] || message.status;
      if (message.error) stateText += ": " + message.error;
      details.appendChild(el("span", { className: "state " + message.status, text: stateText }));
    }
    if (details.firstChild) li.appendChild(details);
    if (message.sources && message.sources.length) {
      li.appendChild(el("p", { className: "sources", text: "Sources: " + message.sources.join(", ") }));
    }
    return li;
  }

  function renderNote(note) {
    var li = el("li", { className: "message note", "aria-label": "Internal note" });
    li.appendChild(el("p", { className: "by", text: "Internal note · " + (note.author || "") + " · " + clock(note.created_ms) }));
    li.appendChild(el("p", { className: "text", text: note.text }));
    return li;
  }

  // ---------- the composer: reply, canned replies, templates, notes ----------

  function windowClosed(detail) {
    return Boolean(detail.window) && !detail.window.open;
  }

  var templatesShown = null;

  function renderComposer(detail) {
    var closed = windowClosed(detail);
    byId("reply-form").hidden = closed;
    byId("template-form").hidden = !closed;
    if (closed) byId("canned").hidden = true;
    byId("canned-toggle").hidden = !state.canned.length;
    if (!closed) return;
    var templates = detail.templates || [];
    var key = JSON.stringify(templates);
    if (templatesShown === key) return;
    templatesShown = key;
    var select = byId("template-select");
    clear(select);
    templates.forEach(function (template, index) {
      select.appendChild(el("option", { value: String(index), text: template.name + " (" + template.language + ")" }));
    });
    byId("template-none").hidden = templates.length > 0;
    byId("template-pick").hidden = templates.length === 0;
    renderTemplateFields();
  }

  function renderTemplateFields() {
    var detail = state.conversation;
    var box = byId("template-fields");
    clear(box);
    var template = detail && (detail.templates || [])[Number(byId("template-select").value)];
    if (!template) return;
    template.parameters.forEach(function (parameter, index) {
      var id = "template-parameter-" + index;
      box.appendChild(el("label", { for: id, text: parameter.replace(/_/g, " ") }));
      var input = el("input", { type: "text", id: id, name: parameter, required: true, autocomplete: "off" });
      if (/name/.test(parameter) && detail.contact && detail.contact.name) input.value = detail.contact.name;
      box.appendChild(input);
    });
  }

  byId("template-select").addEventListener("change", renderTemplateFields);

  function composerError(text) {
    var box = byId("composer-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function busy(form, on) {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = on; });
  }

  byId("reply-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.currentTarget, box = byId("reply");
    var text = box.value.trim();
    if (!text || !state.openId) return;
    composerError("");
    busy(form, true);
    api("POST", conversationPath("/reply"), { text: text }).then(function (queued) {
      if (queued && queued.message_id) state.mine[queued.message_id] = true;
      state.toBottom = true;
      box.value = "";
      byId("others-replied").hidden = true;
      loadConversation(false);
      loadLists();
    }, function (error) {
      // 409: the provider's window closed; the message says so in plain words.
      composerError(error.message);
      if (error.status === 409) loadConversation(false);
    }).then(function () { busy(form, false); });
  });

  byId("reply").addEventListener("input", function () {
    if (!byId("reply").value.trim()) byId("others-replied").hidden = true;
  });

  byId("template-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.currentTarget;
    var template = (state.conversation.templates || [])[Number(byId("template-select").value)];
    if (!template) return;
    var parameters = Array.prototype.map.call(byId("template-fields").querySelectorAll("input"), function (input) { return input.value.trim(); });
    composerError("");
    busy(form, true);
    api("POST", conversationPath("/template"), { name: template.name, parameters: parameters }).then(function (queued) {
      if (queued && queued.message_id) state.mine[queued.message_id] = true;
      state.toBottom = true;
      byId("template-fields").querySelectorAll("input").forEach(function (input) { input.value = ""; });
      renderTemplateFields();
      loadConversation(false);
    }, function (error) { composerError(error.message); }).then(function () { busy(form, false); });
  });

  function ownerAction(action, done) {
    if (!state.openId) return;
    composerError("");
    api("POST", conversationPath("/" + action)).then(function () {
      if (done) done();
      loadConversation(false);
      loadLists();
    }, failed);
  }

  byId("take-over").addEventListener("click", function () { ownerAction("take-over"); });
  byId("hand-back").addEventListener("click", function () { ownerAction("hand-back"); });
  byId("resolve").addEventListener("click", function () { ownerAction("resolve"); });

  byId("note-toggle").addEventListener("click", function () {
    var form = byId("note-form");
    form.hidden = !form.hidden;
    byId("note-toggle").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) byId("note").focus();
  });

  byId("note-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.currentTarget, box = byId("note");
    var text = box.value.trim();
    if (!text || !state.openId) return;
    busy(form, true);
    api("POST", conversationPath("/notes"), { text: text }).then(function () {
      box.value = "";
      form.hidden = true;
      byId("note-toggle").setAttribute("aria-expanded", "false");
      state.toBottom = true;
      loadConversation(false);
    }, function (error) { composerError(error.message); }).then(function () { busy(form, false); });
  });

  // Canned replies: {name} comes from the contact; every other {field} is asked for.
  function loadCanned() {
    return api("GET", "/api/canned").then(function (answer) {
      state.canned = (answer && answer.canned) || [];
      var select = byId("canned-select");
      clear(select);
      state.canned.forEach(function (canned, index) {
        select.appendChild(el("option", { value: String(index), text: canned.title }));
      });
      byId("canned-toggle").hidden = !state.canned.length;
      renderCannedFields();
    }).catch(failed);
  }

  function cannedFields(canned) {
    if (canned.fields) return canned.fields;
    var found = [];
    canned.text.replace(/\{([a-z0-9_]+)\}/g, function (_, name) {
      if (found.indexOf(name) < 0) found.push(name);
    });
    return found;
  }

  function renderCannedFields() {
    var box = byId("canned-fields");
    clear(box);
    var canned = state.canned[Number(byId("canned-select").value)];
    if (!canned) return;
    var contact = state.conversation && state.conversation.contact;
    cannedFields(canned).forEach(function (field) {
      if (field === "name" && contact && contact.name) return;
      var id = "canned-field-" + field;
      box.appendChild(el("label", { for: id, text: field.replace(/_/g, " ") }));
      box.appendChild(el("input", { type: "text", id: id, "data-field": field, autocomplete: "off" }));
    });
    box.appendChild(el("p", { className: "hint preview", text: canned.text }));
  }

  byId("canned-select").addEventListener("change", renderCannedFields);

  byId("canned-toggle").addEventListener("click", function () {
    var box = byId("canned");
    box.hidden = !box.hidden;
    byId("canned-toggle").setAttribute("aria-expanded", String(!box.hidden));
    if (!box.hidden) {
      renderCannedFields();
      var first = box.querySelector("#canned-fields input") || byId("canned-select");
      first.focus();
    }
  });

  byId("canned-insert").addEventListener("click", function () {
    var canned = state.canned[Number(byId("canned-select").value)];
    if (!canned) return;
    var contact = state.conversation && state.conversation.contact;
    var values = {};
    if (contact && contact.name) values.name = contact.name;
    byId("canned-fields").querySelectorAll("input[data-field]").forEach(function (input) {
      values[input.getAttribute("data-field")] = input.value.trim();
    });
    var missing = cannedFields(canned).filter(function (field) { return !values[field]; });
    if (missing.length) {
      composerError("Fill in: " + missing.join(", "));
      var empty = byId("canned-fields").querySelector("input[data-field='" + missing[0] + "']");
      if (empty) empty.focus();
      return;
    }
    composerError("");
    var text = canned.text.replace(/\{([a-z0-9_]+)\}/g, function (whole, field) {
      return Object.prototype.hasOwnProperty.call(values, field) ? values[field] : whole;
    });
    var box = byId("reply");
    box.value = box.value.trim() ? box.value.replace(/\s*$/, "\n") + text : text;
    byId("canned").hidden = true;
    byId("canned-toggle").setAttribute("aria-expanded", "false");
    box.focus();
  });

  // ---------- the knowledge view ----------

  function loadKnowledge() {
    return api("GET", "/api/knowledge").then(function (knowledge) {
      byId("knowledge-loaded").textContent = knowledge.loaded_ms
        ? new Date(knowledge.loaded_ms).toLocaleString() + " (" + ago(knowledge.loaded_ms) + ")"
        : "not loaded";
      byId("knowledge-entries").textContent = String(knowledge.entries);
      var list = byId("knowledge-errors");
      clear(list);
      (knowledge.errors || []).forEach(function (error) { list.appendChild(el("li", { text: error })); });
      byId("knowledge-ok").hidden = (knowledge.errors || []).length > 0;
      document.title = (state.needsYou.length ? "(" + state.needsYou.length + ") " : "") + "frontdesk";
    }).catch(failed);
  }

  byId("ask-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.currentTarget;
    var message = byId("ask-message").value.trim();
    if (!message) return;
    var errorBox = byId("ask-error");
    errorBox.hidden = true;
    busy(form, true);
    api("POST", "/api/ask", { message: message, channel: byId("ask-channel").value }).then(function (answer) {
      byId("ask-result").hidden = false;
      byId("ask-action").textContent = answer.action === "escalate" ? "escalate (handed to you)" : answer.action;
      byId("ask-reason").textContent = answer.reason ? answer.reason + " (" + reasonText(answer.reason) + ")" : "—";
      byId("ask-confidence").textContent = typeof answer.confidence === "number" ? answer.confidence.toFixed(2) : "—";
      var sources = byId("ask-sources");
      clear(sources);
      if (answer.sources && answer.sources.length) {
        var ul = el("ul");
        answer.sources.forEach(function (source) { ul.appendChild(el("li", { text: source })); });
        sources.appendChild(ul);
      } else sources.textContent = "none";
      byId("ask-reply").textContent = answer.reply || "";
    }, function (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    }).then(function () { busy(form, false); });
  });

  // ---------- search ----------

  var searchTimer = null;

  function search(text, push) {
    text = text.trim();
    if (text === state.query) return;
    state.query = text;
    if (state.view === "list") {
      var url = text ? "/?q=" + encodeURIComponent(text) : "/";
      if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
    }
    loadLists();
  }

  byId("search").addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(searchTimer);
    search(byId("search-input").value, true);
  });
  byId("search-input").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { search(byId("search-input").value, false); }, 300);
  });

  // ---------- live updates ----------

  var EVENT_KINDS = ["message", "status", "queue", "owner", "note", "read", "knowledge", "erased"];
  var bannerTimer = null;
  var refreshTimer = null, refreshConversation = false;

  function showBanner(show) {
    byId("banner").hidden = !show;
    // For style sheets and tests: whether live updates are flowing.
    document.body.setAttribute("data-live", show ? "no" : "yes");
  }

  function scheduleRefresh(conversation) {
    refreshConversation = refreshConversation || conversation;
    if (refreshTimer) return;
    // Events come in bursts (a message, then its status, then a queue item): read once per burst.
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      var alsoConversation = refreshConversation;
      refreshConversation = false;
      loadLists();
      if (alsoConversation && state.openId) loadConversation(true);
    }, 60);
  }

  function onEvent(event) {
    var data = {};
    try { data = JSON.parse(event.data); } catch (ignored) { /* a keep-alive or a malformed line */ }
    var kind = data.kind || event.type;
    if (kind === "knowledge") {
      if (state.view === "knowledge") loadKnowledge();
      return;
    }
    scheduleRefresh(Boolean(state.openId && data.conversation_id === state.openId));
  }

  function connectEvents() {
    var source = new EventSource("/api/events");
    state.events = source;
    clearTimeout(bannerTimer);
    // A slow first connection shows the banner too, but not a normal one.
    bannerTimer = setTimeout(function () { if (!state.eventsOpen) showBanner(true); }, 3000);
    source.onopen = function () {
      var wasDown = !byId("banner").hidden || state.eventsOpen === null;
      state.eventsOpen = true;
      clearTimeout(bannerTimer);
      showBanner(false);
      if (wasDown) { loadLists(); if (state.openId) loadConversation(false); }
    };
    source.onerror = function () {
      state.eventsOpen = false;
      showBanner(true);
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (signed out, or a proxy in the way):
        // check the session, then open a new one. The lists are re-read on open.
        setTimeout(function () {
          loadSession().then(function () {
            state.eventsOpen = null;
            connectEvents();
          }, function () { setTimeout(connectEvents, 5000); });
        }, 3000);
      }
      // Otherwise the browser retries by itself and resends Last-Event-ID.
    };
    EVENT_KINDS.forEach(function (kind) { source.addEventListener(kind, onEvent); });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && state.conversation && state.conversation.unread > 0) loadConversation(true);
  });

  // The waits in the lists and the window countdown move on their own.
  setInterval(function () { if (state.conversation) renderWindow(); }, 1000);
  setInterval(function () { if (state.listsLoaded) renderLists(); }, 30000);

  // ---------- keyboard shortcuts (no Alt, no Ctrl; never while typing) ----------

  var help = byId("help");
  var shortcutsBox = byId("shortcuts-on");
  shortcutsBox.checked = state.shortcuts;
  shortcutsBox.addEventListener("change", function () {
    state.shortcuts = shortcutsBox.checked;
    localStorage.setItem("frontdesk.shortcuts", state.shortcuts ? "on" : "off");
  });
  byId("show-help").addEventListener("click", function () { help.showModal(); });

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function visibleItems() {
    return Array.prototype.filter.call(document.querySelectorAll(".items .item"), function (item) {
      return item.offsetParent !== null;
    });
  }

  function moveSelection(step) {
    var items = visibleItems();
    if (!items.length) return;
    var index = items.findIndex(function (item) { return item.classList.contains("selected"); });
    if (index < 0) index = items.findIndex(function (item) { return item.classList.contains("open"); });
    index = index < 0 ? (step > 0 ? 0 : items.length - 1) : Math.min(items.length - 1, Math.max(0, index + step));
    items.forEach(function (item) { item.classList.remove("selected"); });
    var chosen = items[index];
    chosen.classList.add("selected");
    state.selected = { list: chosen.getAttribute("data-list"), id: chosen.getAttribute("data-id") };
    chosen.scrollIntoView({ block: "nearest" });
    chosen.querySelector("a").focus({ preventScroll: true });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event.target) && !help.open) {
      event.target.blur();
      return;
    }
    if (!state.shortcuts || event.altKey || event.ctrlKey || event.metaKey) return;
    if (typing(event.target) || help.open) return;
    var key = event.key;
    if (key === "?") { event.preventDefault(); help.showModal(); return; }
    if (state.view === "knowledge") return;
    if (key === "j") { event.preventDefault(); moveSelection(1); }
    else if (key === "k") { event.preventDefault(); moveSelection(-1); }
    else if (key === "o" || (key === "Enter" && !(event.target.closest && event.target.closest("a, button")))) {
      var selected = document.querySelector(".items .item.selected a");
      if (selected) { event.preventDefault(); route(selected.href, true); }
    } else if (key === "r") {
      if (state.conversation && !byId("reply-form").hidden) { event.preventDefault(); byId("reply").focus(); }
    } else if (key === "e") {
      if (state.conversation && !byId("resolve").disabled) { event.preventDefault(); ownerAction("resolve"); }
    } else if (key === "/") {
      event.preventDefault();
      byId("search-input").focus();
    }
  });

  // ---------- start ----------

  byId("back").addEventListener("click", function (event) {
    // Back to the list: on a phone this is the way out of a conversation.
    event.preventDefault();
    route(state.query ? "/?q=" + encodeURIComponent(state.query) : "/", true);
  });

  renderNotifyButton();
  state.eventsOpen = null;
  loadSession().then(function () {
    route(location.href, false);
    loadCanned();
    connectEvents();
  }, failed);
})();
