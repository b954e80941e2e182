// Browser test of `pulsestream demo` (started by scripts/ui-tests.sh at
// DEMO_STARTED_MS): its login works, live traffic reaches the tail, and a
// firing alert shows on the Alerts page within 60 s of the demo's start.
import { createRequire } from "node:module";

const require = createRequire(`${process.env.PW_DIR}/package.json`);
const { chromium } = require("playwright-core");

const BASE = process.env.BASE_URL;
const SHOTS = process.env.SCREENSHOT_DIR;
const STARTED = Number(process.env.DEMO_STARTED_MS);
const DEMO = { email: "demo@pulsestream.local", password: "demo-password" };
const FIRING_WITHIN_MS = 60_000;  // the bound: a firing alert within a minute

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
let failed = 0;
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  await page.goto(BASE + "/");
  await page.fill("#email", DEMO.email);
  await page.fill("#password", DEMO.password);
  await page.click("form button[type=submit]");
  await page.waitForURL("**/overview", { timeout: 10_000 });

  await page.click('nav a[href="/tail"]');
  await page.locator("[data-page=tail] tbody tr").first().waitFor({ timeout: 10_000 });
  console.log("ok   demo: live traffic in the tail");

  await page.click('nav a[href="/alerts"]');
  const left = Math.max(1_000, FIRING_WITHIN_MS - (Date.now() - STARTED));
  await page.locator("[data-page=alerts] .badge.firing").first().waitFor({ timeout: left });
  console.log(`ok   demo: a firing alert on the Alerts page ${Date.now() - STARTED} ms after the start`);
  await page.screenshot({ path: `${SHOTS}/demo-alerts.png`, fullPage: true });

  // Acknowledge the real alert: the page posts it, the server records who.
  await page.locator("[data-page=alerts] button:text('Acknowledge')").first().click();
  await page.locator("[data-page=alerts] .badge.acknowledged").first().waitFor();
  await page.locator("[data-page=alerts] td", { hasText: DEMO.email }).first().waitFor();
  console.log("ok   demo: the firing alert acknowledged from the Alerts page, by the demo user");
} catch (e) {
  failed = 1;
  console.log(`FAIL demo: ${String(e).slice(0, 1500)}`);
}
await browser.close();
process.exit(failed);
