/* frontdesk web chat loader. Paste on any page:
 *   <script src="https://frontdesk.example/widget.js" async></script>
 * Optional: data-title="Ask us", data-color="#0a7d52". It draws the launcher only;
 * the chat (/chat/app.js) loads on first open, and nothing is stored before the
 * visitor's first message. API: Frontdesk.open(), .close(), .identify(id, sig), .reset().
 * Calls made before this loads can be queued: window.Frontdesk = {q: [["open"]]}. */
(function (w, d) {
  "use strict";
  if (w.Frontdesk && w.Frontdesk.version) return;
  var me = d.currentScript || d.querySelector('script[src*="/widget.js"]');
  var base = me.src.replace(/\/widget\.js([?#].*)?$/, "");
  var version = "__FRONTDESK_CHAT_VERSION__";
  var color = me.getAttribute("data-color") || "";
  var options = {
    title: me.getAttribute("data-title") || "Chat with us",
    color: /^#[0-9a-f]{3,8}$/i.test(color) ? color : "#1f6feb"
  };
  var early = (w.Frontdesk && w.Frontdesk.q) || [];
  var root, launcher, app, loading, waiting = [], user = null;

  function mount() {
    if (root) return;
    var host = d.createElement("div");
    host.setAttribute("data-frontdesk", "");
    host.style.setProperty("--fd-accent", options.color);
    root = host.attachShadow({ mode: "open" });
    root.innerHTML =
      "<style>:host{all:initial}" +
      ".launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;" +
      "border:0;border-radius:50%;padding:0;background:var(--fd-accent);color:#fff;cursor:pointer;" +
      "display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.28)}" +
      ".launch:hover{filter:brightness(1.1)}.launch:focus-visible{outline:3px solid #111;outline-offset:3px}" +
      ".launch[hidden]{display:none}.launch[aria-busy=true]{opacity:.7;cursor:progress}" +
      ".launch.unread::after{content:'';position:absolute;top:3px;right:3px;width:12px;height:12px;" +
      "border-radius:50%;background:#d1242f;border:2px solid #fff}</style>" +
      '<button type="button" class="launch" aria-haspopup="dialog" aria-expanded="false">' +
      '<svg aria-hidden="true" width="28" height="28" viewBox="0 0 24 24" fill="currentColor">' +
      '<path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg></button>';
    launcher = root.querySelector("button");
    launcher.setAttribute("aria-label", "Open chat: " + options.title);
    launcher.addEventListener("click", function () { api.open(); });
    d.body.appendChild(host);
  }

  function withApp(then) {
    if (app) return then(app);
    waiting.push(then);
    if (loading) return;
    loading = true;
    mount();
    launcher.setAttribute("aria-busy", "true");
    var script = d.createElement("script");
    script.src = base + "/chat/app.js?v=" + version;
    script.async = true;
    script.onerror = function () {
      loading = false;
      waiting = [];
      launcher.removeAttribute("aria-busy");
    };
    d.head.appendChild(script);
  }

  var api = {
    version: version,
    open: function () { withApp(function (a) { a.open(); }); },
    close: function () { if (app) app.close(); },
    identify: function (id, signature) {
      user = { id: String(id), signature: String(signature) };
      if (app) app.identify(user);
    },
    reset: function () {
      user = null;
      try { w.localStorage.removeItem("frontdesk.visitor"); } catch (e) { /* storage blocked */ }
      if (app) app.reset();
    },
    /* Called once by /chat/app.js with its factory. */
    _start: function (factory) {
      if (app) return;
      mount();
      app = factory({ root: root, launcher: launcher, base: base, version: version, options: options, user: user });
      launcher.removeAttribute("aria-busy");
      var ready = waiting;
      waiting = [];
      ready.forEach(function (then) { then(app); });
    }
  };
  w.Frontdesk = api;
  if (d.body) mount(); else d.addEventListener("DOMContentLoaded", mount);
  early.forEach(function (call) {
    if (typeof api[call[0]] === "function" && call[0].charAt(0) !== "_") api[call[0]].apply(api, call.slice(1));
  });
})(window, document);
