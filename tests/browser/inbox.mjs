// Drives the owner's inbox in headless Chromium the way the shop owner would.
// Usage: node inbox.mjs <base URL> <password> <screenshot dir>
//
// Run by `cargo test --release --test api inbox_browser`, which starts frontdesk
// with a fake Graph API and plays the customers: before this script starts it has
// sent Priya (answered by the bot), Marcus (a complaint, so he needs a person) and
// Sam (a message from long ago, so his WhatsApp window is closed). Whenever the
// script needs a customer to do something it prints `READY-FOR:<step>` and waits
// for `DONE:<step>` on stdin; the Rust side sends the signed webhook (or checks
// what the fake provider received) in between. So everything a customer does
// happens while the page is open, and must show up without a reload.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import readline from "node:readline";
import path from "node:path";

const [base, password, screenshotDir] = process.argv.slice(2);
if (!base || !password || !screenshotDir) {
  console.error("usage: node inbox.mjs <base URL> <password> <screenshot dir>");
  process.exit(2);
}

const HOSTILE_NAME = '"><img src=x onerror=window.__pwned=1>';
const HOSTILE_TEXT = '<script>window.__pwned=2</script>"><img src=x onerror=alert(1)> please let me speak to a person';
const REPLY = "Hi Kerry, Jasmine here";

// ---------- talking to the Rust side ----------

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
const early = [];
lines.on("line", (line) => {
  const next = waiting.shift();
  if (next) next(line.trim());
  else early.push(line.trim());
});

/** Asks the Rust side to play step `what`, and waits until it says it has. */
async function customer(what) {
  console.log(`READY-FOR:${what}`);
  const line = early.length ? early.shift() : await new Promise((resolve) => waiting.push(resolve));
  assert.equal(line, `DONE:${what}`, `the test driver answered ${line}`);
}

const step = (what) => console.log(`- ${what}`);

// ---------- the browser ----------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});

/**
 * Headless Chromium has no notification centre and is never "hidden", so the
 * page gets a recording Notification and a switch for document.hidden. The
 * inbox's own code decides when to ask for permission and when to notify.
 */
function instrument() {
  window.__notifications = [];
  window.__permissionAsked = 0;
  let permission = "default";
  class RecordingNotification {
    constructor(title, options) {
      window.__notifications.push({ title, body: options && options.body });
    }
    close() {}
    static get permission() {
      return permission;
    }
    static requestPermission(callback) {
      window.__permissionAsked += 1;
      permission = "granted";
      if (callback) callback(permission);
      return Promise.resolve(permission);
    }
  }
  window.Notification = RecordingNotification;
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
}

const problems = [];
function watch(page, label) {
  page.on("pageerror", (error) => problems.push(`${label}: page error: ${error}`));
  page.on("dialog", (dialog) => {
    problems.push(`${label}: a dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("console", (message) => {
    const text = message.text();
    if (message.type() === "error" && /Content Security Policy|Refused to/i.test(text)) {
      problems.push(`${label}: ${text}`);
    }
  });
  return page;
}

const shot = async (page, name) => {
  const file = path.join(screenshotDir, name);
  await page.screenshot({ path: file });
  step(`screenshot: ${file}`);
};

const names = (page, list) => page.locator(`#${list} .item .name`).allTextContents();
const item = (page, list, name) =>
  page.locator(`#${list} .item`).filter({ has: page.locator(".name", { hasText: name }) });

try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await desktop.addInitScript(instrument);
  const page = watch(await desktop.newPage(), "desktop");
  let loads = 0;
  page.on("load", () => (loads += 1));

  // ---------- sign in ----------
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login$/);
  step("without a session the inbox sends you to the sign-in page");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/login\?error=1$/);
  const loginError = page.locator("#login-error");
  await loginError.waitFor();
  assert.match(await loginError.innerText(), /wrong password/i);
  step("a wrong password shows an error");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  await page.locator("#all .item").first().waitFor();
  assert.equal(await page.locator("script:not([src]), [style]").count(), 0, "inline script or style in the page");
  step("signed in: the inbox shell has no inline script or style");

  // ---------- the lists as they were before the page opened ----------
  assert.deepEqual(await names(page, "needs-you"), ["Marcus"]);
  assert.deepEqual((await names(page, "all")).sort(), ["Marcus", "Priya", "Sam"]);
  assert.match(await item(page, "needs-you", "Marcus").locator(".why").innerText(), /complaint/);
  assert.equal(await page.title(), "(1) frontdesk");
  step("Needs you lists Marcus (complaint); All lists the three conversations; the title says (1)");

  // ---------- notifications: asked from the button, never on load ----------
  assert.equal(await page.evaluate(() => window.__permissionAsked), 0, "permission asked on load");
  const notify = page.getByRole("button", { name: "Turn on notifications" });
  await notify.click();
  await page.getByRole("button", { name: "Notifications on" }).waitFor();
  assert.equal(await page.evaluate(() => window.__permissionAsked), 1);
  step("notification permission is asked only when the button is pressed");

  // ---------- a customer asks for a person while the page is open (and hidden) ----------
  await page.waitForSelector("body[data-live=yes]");
  await page.evaluate(() => window.__setHidden(true));
  const loadsBefore = loads;
  await customer("kerry-asks-for-a-person");
  const kerry = item(page, "needs-you", "Kerry");
  await kerry.waitFor({ timeout: 30000 });
  assert.equal(loads, loadsBefore, "the page reloaded");
  assert.deepEqual(await names(page, "needs-you"), ["Marcus", "Kerry"], "oldest wait first");
  assert.match(await kerry.locator(".why").innerText(), /asked for a person/);
  assert.match(await kerry.locator(".meta").innerText(), /WhatsApp/);
  assert.match(await kerry.locator(".meta").innerText(), /waited/);
  await page.waitForFunction(() => document.title === "(2) frontdesk");
  step("Kerry's WhatsApp message appears in Needs you without a reload; the title says (2)");
  await page.waitForFunction(() => window.__notifications.length > 0);
  const notes = await page.evaluate(() => window.__notifications);
  assert.equal(notes.length, 1, JSON.stringify(notes));
  assert.equal(notes[0].title, "Needs you: Kerry");
  step("…and, the page being hidden, a browser notification says so");
  await page.evaluate(() => window.__setHidden(false));
  await shot(page, "inbox-needs-you.png");

  // ---------- keyboard: j/k to Kerry, Enter opens, ? helps ----------
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  await page.keyboard.press("k");
  await page.keyboard.press("j");
  assert.equal(await page.locator(".item.selected .name").innerText(), "Kerry");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/conversations\/[^/]+$/);
  const kerryUrl = page.url();
  const history = page.locator("#messages");
  await history.locator(".message.in", { hasText: "talk to a person" }).waitFor();
  const handOver = history.locator(".message.out.bot").first();
  await handOver.waitFor();
  assert.match(await handOver.innerText(), /handed to you/);
  assert.match(await handOver.innerText(), /asked for a person/);
  assert.match(await page.locator("#queue-info").innerText(), /Needs you: asked for a person/);
  assert.match(await page.locator("#window-info").innerText(), /window closes in 23 h/);
  assert.equal(loads, loadsBefore, "opening a conversation reloaded the page");
  step("j/k move in the list, Enter opens Kerry: her message, the bot's hand-over with its reason, the 24-hour countdown");
  const countdownBefore = await page.locator("#window-info").innerText();
  await page.waitForFunction((before) => document.querySelector("#window-info").textContent !== before, countdownBefore);
  step("the window countdown is live");

  await page.keyboard.press("?");
  await page.locator("#help").waitFor();
  await page.keyboard.press("Escape");
  await page.locator("#help").waitFor({ state: "hidden" });
  step("? shows the shortcuts, Escape closes them");

  // ---------- canned reply with a fill-in field ----------
  await page.getByRole("button", { name: "Canned replies" }).click();
  await page.locator("#canned-select").selectOption({ label: "Order ready" });
  assert.equal(await page.locator("#canned-field-name").count(), 0, "{name} is filled from the contact, not asked");
  await page.locator("#canned-field-time").fill("4 pm");
  await page.getByRole("button", { name: "Insert into the reply" }).click();
  assert.equal(await page.locator("#reply").inputValue(), "Hi Kerry, your order is ready for pickup at 4 pm.");
  await page.locator("#reply").fill("");
  step("a canned reply fills {name} from the contact and asks for {time}");

  // ---------- a 409 shows its message ----------
  await page.route("**/api/conversations/*/reply", (route) =>
    route.fulfill({
      status: 409,
      contentType: "application/json",
      body: JSON.stringify({ error: "whatsapp_window_closed", message: "WhatsApp's 24-hour window has closed." }),
    }),
  );
  await page.locator("#reply").fill("this one is refused");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator("#composer-error", { hasText: "24-hour window has closed" }).waitFor();
  await page.unroute("**/api/conversations/*/reply");
  step("a reply answered with 409 shows the server's message");

  // ---------- reply, and watch its delivery state change in place ----------
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("r");
  assert.equal(await page.evaluate(() => document.activeElement.id), "reply", "r focuses the reply box");
  await page.locator("#reply").fill("");
  await page.keyboard.type(REPLY); // typing j, k, e, r here must not trigger shortcuts
  await page.getByRole("button", { name: "Send", exact: true }).click();
  const mine = history.locator(".message.out.human", { hasText: REPLY });
  await mine.waitFor();
  assert.equal(await page.locator("#reply").inputValue(), "");
  assert.ok(await page.locator("#composer-error").isHidden());
  const mineNode = await mine.elementHandle();
  step(`r focuses the reply box; "${REPLY}" is sent and shows in the history`);
  await customer("reply-delivered-and-read");
  await page.waitForFunction((node) => node.isConnected && /^read/.test(node.querySelector(".state").textContent), mineNode, {
    timeout: 15000,
  });
  step("the fake WhatsApp got it; its state moves to read in place (same element)");

  // ---------- two people answering at once ----------
  const colleague = watch(await desktop.newPage(), "colleague");
  await colleague.goto(kerryUrl);
  await colleague.locator("#messages .message.out.human", { hasText: REPLY }).waitFor();
  await page.locator("#reply").fill("Let me check the");
  await colleague.locator("#reply").fill("I'm checking the oven now");
  await colleague.getByRole("button", { name: "Send", exact: true }).click();
  await history.locator(".message.out.human", { hasText: "checking the oven" }).waitFor({ timeout: 15000 });
  await page.locator("#others-replied").waitFor();
  assert.equal(await page.locator("#reply").inputValue(), "Let me check the", "the draft was lost");
  await page.locator("#reply").fill("");
  await colleague.close();
  step("a colleague's reply appears live while a draft is open, with a warning, and the draft is kept");

  // ---------- an internal note ----------
  await page.getByRole("button", { name: "Add an internal note" }).click();
  await page.locator("#note").fill("Wants a two-tier lemon cake for Saturday");
  await page.getByRole("button", { name: "Add note" }).click();
  await history.locator(".message.note", { hasText: "two-tier lemon cake" }).waitFor();
  step("an internal note shows in the history");
  await shot(page, "inbox-conversation.png");

  // ---------- hand back: the bot answers her next message, live ----------
  await page.getByRole("button", { name: "Hand back to bot" }).click();
  await kerry.waitFor({ state: "detached" });
  await page.waitForFunction(() => document.title === "(1) frontdesk");
  await page.locator("#conversation-meta", { hasText: "the bot is answering" }).waitFor();
  step("Hand back to bot: Kerry leaves Needs you, the title says (1)");
  const botReplies = await history.locator(".message.out.bot").count();
  await customer("kerry-asks-the-bot");
  const answer = history.locator(".message.out.bot").nth(botReplies);
  await answer.waitFor({ timeout: 30000 });
  const answerText = await answer.innerText();
  assert.match(answerText, /deliver/i);
  assert.match(answerText, /answered/);
  assert.match(answerText, /confidence [01]\.\d\d/);
  assert.match(await answer.locator(".sources").innerText(), /Sources: .*#/);
  step("her next message is answered by the bot, live, with its sources and confidence");

  // ---------- a closed window offers the templates instead ----------
  await page.locator("#all .item", { hasText: "Sam" }).click();
  await page.locator("#conversation-name", { hasText: "Sam" }).waitFor();
  await page.locator("#template-form").waitFor();
  assert.ok(await page.locator("#reply-form").isHidden(), "the reply box is shown although the window closed");
  assert.match(await page.locator("#window-info").innerText(), /window closed/);
  await page.locator("#template-select").selectOption({ label: "order_ready (en_US)" });
  assert.equal(await page.getByLabel("customer name").inputValue(), "Sam");
  await page.getByLabel("pickup time").fill("5 pm");
  const before = await history.locator(".message.out").count();
  await page.getByRole("button", { name: "Send template" }).click();
  await history.locator(".message.out").nth(before).waitFor();
  assert.ok(await page.locator("#composer-error").isHidden(), await page.locator("#composer-error").innerText());
  step("with the 24-hour window closed the reply box becomes a template picker, and the template is queued");

  // ---------- hostile customer text is shown as text ----------
  await customer("hostile-customer");
  const hostile = page.locator("#all .item").filter({ has: page.locator(".name", { hasText: "<img" }) });
  await hostile.waitFor({ timeout: 30000 });
  assert.equal(await hostile.locator(".name").textContent(), HOSTILE_NAME);
  await hostile.click();
  await history.locator(".message.in").first().waitFor();
  assert.equal(await history.locator(".message.in .text").first().textContent(), HOSTILE_TEXT);
  assert.equal(await page.locator("#conversation-name").textContent(), HOSTILE_NAME);
  assert.equal(await page.locator("img").count(), 0, "an element was injected");
  assert.equal(await page.locator("script").count(), 1, "a script was injected");
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  step("<script> and \"><img onerror> in a name and a message are shown as text: nothing injected, no dialog");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("e");
  await page.locator("#conversation-meta", { hasText: "resolved" }).waitFor();
  assert.equal(await page.locator("#needs-you .item").filter({ hasText: "<img" }).count(), 0);
  step("e resolves the open conversation");

  // ---------- search over every message ----------
  await page.getByRole("link", { name: "Inbox", exact: true }).click();
  await page.waitForURL(`${base}/`);
  await page.locator("#search-input").fill("brooklyn");
  await page.locator("#search-input").press("Enter");
  await page.waitForURL(/\?q=brooklyn$/);
  await page.waitForFunction(() => document.querySelectorAll("#all .item").length === 2);
  assert.deepEqual((await names(page, "all")).sort(), ["Kerry", "Priya"]);
  await page.locator("#search-input").fill("");
  await page.locator("#search-input").press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#all .item").length === 5);
  step("the search box finds the conversations whose messages mention brooklyn (?q=)");

  // ---------- the shortcuts switch is remembered ----------
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("?");
  await page.getByLabel("Keyboard shortcuts on").uncheck();
  await page.keyboard.press("Escape");
  const selectedBefore = await page.locator(".item.selected").evaluateAll((nodes) => nodes.map((n) => n.dataset.id));
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  assert.deepEqual(
    await page.locator(".item.selected").evaluateAll((nodes) => nodes.map((n) => n.dataset.id)),
    selectedBefore,
    "j still works with the shortcuts off",
  );
  await page.reload();
  await page.locator("#all .item").first().waitFor();
  await page.keyboard.press("?");
  assert.ok(await page.locator("#help").isHidden(), "? opened help with the shortcuts off after a reload");
  assert.equal(await page.evaluate(() => localStorage.getItem("frontdesk.shortcuts")), "off");
  await page.getByRole("button", { name: /Shortcuts/ }).click();
  await page.getByLabel("Keyboard shortcuts on").check();
  await page.keyboard.press("Escape");
  await page.keyboard.press("j");
  assert.equal(await page.locator(".item.selected").count(), 1);
  step("the shortcuts can be switched off, and that is remembered across a reload");

  // ---------- knowledge ----------
  await page.getByRole("link", { name: "Knowledge" }).click();
  await page.waitForURL(`${base}/knowledge`);
  await page.locator("#knowledge-ok").waitFor();
  assert.ok(Number(await page.locator("#knowledge-entries").innerText()) > 10);
  assert.match(await page.locator("#knowledge-loaded").innerText(), /ago|just now/);
  await page.getByLabel("A customer's message").fill("are you open on sunday?");
  await page.getByRole("button", { name: "Ask", exact: true }).click();
  await page.locator("#ask-result").waitFor({ timeout: 20000 });
  assert.match(await page.locator("#ask-action").innerText(), /answer|escalate/);
  assert.match(await page.locator("#ask-confidence").innerText(), /^\d\.\d\d$/);
  assert.ok((await page.locator("#ask-reply").innerText()).length > 10);
  step("Knowledge shows when it was loaded, its entries, no errors, and what the bot would say");

  // ---------- the reconnecting banner ----------
  const offline = watch(await desktop.newPage(), "offline");
  await offline.route("**/api/events", (route) => route.abort());
  await offline.goto(`${base}/`);
  await offline.locator("#banner").waitFor({ timeout: 10000 });
  assert.match(await offline.locator("#banner").innerText(), /reconnecting/i);
  await offline.unroute("**/api/events");
  await offline.locator("#banner").waitFor({ state: "hidden", timeout: 20000 });
  await offline.close();
  step('while the event stream is down a "reconnecting…" banner shows; it goes when the stream is back');

  // ---------- the phone: one pane at a time, large tap targets ----------
  const phone = await browser.newContext({
    viewport: { width: 360, height: 740 },
    isMobile: true,
    hasTouch: true,
    storageState: await desktop.storageState(),
  });
  await phone.addInitScript(instrument);
  const mobile = watch(await phone.newPage(), "phone");
  await mobile.goto(`${base}/`);
  await mobile.locator("#all .item").first().waitFor();
  assert.ok(await mobile.locator("#conversation-pane").isHidden(), "the conversation pane shows next to the list");
  await tapTargetsAreLarge(mobile);
  await mobile.locator("#all .item", { hasText: "Kerry" }).tap();
  await mobile.locator("#messages .message").first().waitFor();
  assert.ok(await mobile.locator("#list-pane").isHidden(), "the list shows next to the conversation");
  assert.ok(await mobile.locator("#back").isVisible());
  await tapTargetsAreLarge(mobile);
  await shot(mobile, "inbox-phone.png");
  await mobile.locator("#back").tap();
  await mobile.locator("#list-pane").waitFor();
  assert.ok(await mobile.locator("#conversation-pane").isHidden());
  step("at 360 px one pane shows at a time, with a back button; every tap target is at least 44 px");
  await phone.close();

  // ---------- sign out ----------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login$/);
  step("Sign out ends the session");

  // ---------- the demo shop page ----------
  const demo = watch(await browser.newPage(), "demo");
  await demo.goto(`${base}/demo`);
  await demo.getByRole("button", { name: /open chat/i }).waitFor();
  await demo.close();
  step("/demo is a shop page with the chat launcher");

  assert.deepEqual(problems, [], "page errors, dialogs or CSP violations");
  console.log("browser test passed");
} finally {
  lines.close();
  await browser.close();
}

/** Every visible control on the page is at least 44 px high (and buttons 44 px wide). */
async function tapTargetsAreLarge(page) {
  const small = await page.evaluate(() => {
    const found = [];
    for (const node of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea")) {
      const box = node.getBoundingClientRect();
      if (!box.width || !box.height || box.right <= 0 || node.closest("[hidden], dialog:not([open])")) continue;
      if (getComputedStyle(node).visibility === "hidden") continue;
      const tooNarrow = node.tagName === "BUTTON" && box.width < 44;
      if (box.height < 44 || tooNarrow) {
        found.push(`${node.tagName.toLowerCase()}#${node.id || ""} "${(node.textContent || "").trim().slice(0, 30)}" ${Math.round(box.width)}×${Math.round(box.height)}`);
      }
    }
    return found;
  });
  assert.deepEqual(small, [], "tap targets under 44 px");
}
