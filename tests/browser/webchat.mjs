// Drives the web chat widget in headless Chromium the way a visitor would.
// Usage: node webchat.mjs <shop page URL> [screenshot path]
// Run by `FRONTDESK_BROWSER_TESTS=1 cargo test --release --test api webchat`,
// which starts frontdesk and a shop page on another origin that embeds it.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [shopUrl, screenshot = "/tmp/webchat.png"] = process.argv.slice(2);
if (!shopUrl) {
  console.error("usage: node webchat.mjs <shop page URL> [screenshot path]");
  process.exit(2);
}

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

const step = (what) => console.log(`- ${what}`);
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const sockets = [];
  page.on("websocket", (socket) => sockets.push(socket.url()));
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));

  await page.goto(shopUrl);
  const launcher = page.getByRole("button", { name: /open chat/i });
  await launcher.waitFor();
  step("the launcher is drawn with an accessible name");
  assert.ok(!requested.some((url) => url.includes("/chat/app.js")), "app.js loaded before opening");
  assert.equal(sockets.length, 0, "a socket opened before the visitor did anything");
  assert.equal(await page.evaluate(() => localStorage.getItem("frontdesk.visitor")), null);
  step("nothing loaded, connected or stored before opening");
  const launcherShot = screenshot.replace(/(\.png)?$/, "-launcher.png");
  await page.screenshot({ path: launcherShot });
  step(`screenshot: ${launcherShot}`);

  await launcher.click();
  const dialog = page.getByRole("dialog", { name: /chat with us/i });
  await dialog.waitFor();
  const input = dialog.getByRole("textbox", { name: /your message/i });
  await input.waitFor();
  assert.equal(await input.evaluate((node) => node.getRootNode().activeElement === node), true);
  step("opening shows the dialog with the message box focused");
  assert.equal(await page.evaluate(() => localStorage.getItem("frontdesk.visitor")), null);
  assert.equal(sockets.length, 0, "opening alone connected a socket");

  // The focus trap: Tab from the last control comes back inside the dialog.
  for (let i = 0; i < 6; i++) await page.keyboard.press("Tab");
  const focusInside = await page.evaluate(() => {
    const root = document.querySelector("[data-frontdesk]").shadowRoot;
    return Boolean(root.activeElement && root.querySelector("[role=dialog]").contains(root.activeElement));
  });
  assert.ok(focusInside, "focus escaped the dialog");
  step("Tab stays inside the dialog");

  await input.focus();
  await input.fill("do you deliver to brooklyn?");
  await page.keyboard.press("Enter");
  const answer = dialog.locator(".msg.assistant").first();
  await answer.waitFor({ timeout: 30000 });
  const answerText = await answer.innerText();
  assert.match(answerText, /deliver/i);
  step(`the answer arrived: ${answerText.replace(/\s+/g, " ").slice(0, 80)}…`);
  const token = await page.evaluate(() => localStorage.getItem("frontdesk.visitor"));
  assert.match(token || "", /^[0-9a-f]{32}$/, "the visitor token is stored after the first message");
  assert.ok(sockets.every((url) => !url.includes(token) && !url.includes("?")), "the token leaked into the socket URL");
  const live = await dialog.getByRole("log").getAttribute("aria-live");
  assert.equal(live, "polite");
  step("the token is stored only now, never in the socket URL; the log is aria-live=polite");
  await page.screenshot({ path: screenshot });
  step(`screenshot: ${screenshot}`);

  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal(
    await page.evaluate(() => {
      const root = document.querySelector("[data-frontdesk]").shadowRoot;
      return root.activeElement === root.querySelector(".launch");
    }),
    true,
    "focus did not go back to the launcher",
  );
  step("Escape closes the dialog and focus returns to the launcher");

  await page.reload();
  await page.getByRole("button", { name: /open chat/i }).click();
  await dialog.locator(".msg.assistant").first().waitFor({ timeout: 10000 });
  assert.equal(await dialog.locator(".msg").count(), 2);
  step("after a reload the conversation is replayed");

  await page.evaluate(() => window.Frontdesk.reset());
  assert.equal(await page.evaluate(() => localStorage.getItem("frontdesk.visitor")), null);
  assert.equal(await dialog.locator(".msg").count(), 0);
  step("Frontdesk.reset() forgets the visitor");

  assert.deepEqual(errors, [], "the page threw errors");
  console.log("browser test passed");
} finally {
  await browser.close();
}
