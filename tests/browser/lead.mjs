// The lead's cockpit: a visitor asks to cancel an order (the bot's, under the shipped
// rules); the lead logs in, adds a rule sending cancellations to a person, checks it, sees
// the what-if on the real conversation, applies it, and the next cancellation goes to a
// person. Screenshots of each lead page and of an evaluation report.
// Usage: node lead.mjs http://127.0.0.1:PORT SCREENSHOT_DIR
import { join } from "node:path";
import { launch, WAIT } from "./launch.mjs";

const [url, out] = process.argv.slice(2);
const RULE = `
[[rules]]
name = "cancellations to a person"
when = "intent"
intents = ["cancel_order"]
queue = "general"
priority = 10
`;


async function say(page, text) {
  const panel = page.locator("#frontdesk-widget .panel");
  const input = panel.locator("input[name=text]");
  await input.fill(text);
  await input.press("Enter");
  await panel.locator(".msg.customer", { hasText: text }).waitFor(WAIT);
}

async function main() {
  const visitor = await launch();
  const lead = await launch({ width: 1280, height: 900 });
  try {
    const shop = visitor.page;
    await shop.goto(url + "/");
    await shop.locator("#frontdesk-widget .bubble").click();
    const panel = shop.locator("#frontdesk-widget .panel");
    await panel.locator(".conn", { hasText: "online" }).waitFor(WAIT);
    await say(shop, "I want to cancel order 10009");
    // The bot answers it (after its welcome line).
    await panel.locator(".msg.bot").nth(1).waitFor(WAIT);
    if (await panel.locator(".status", { hasText: "in line" }).count()) {
      throw new Error("under the shipped rules a cancellation is the bot's");
    }

    const page = lead.page;
    await page.goto(url + "/console");
    await page.waitForURL("**/console/login");
    await page.fill("input[name=name]", process.env.LEAD_NAME);
    await page.fill("input[name=password]", process.env.LEAD_PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/console$/);
    await page.locator("#lead-link").waitFor(WAIT);
    await page.click("#lead-link");
    await page.waitForURL(/\/console\/lead$/);
    await page.locator("#rules-state", { hasText: "Version 1 of the rules is in force" }).waitFor(WAIT);

    // Edit a rule: checked, then the what-if on the store's own conversations.
    const text = await page.inputValue("#rules-text");
    await page.fill("#rules-text", text + RULE);
    await page.click("#rules-check");
    await page.locator("#rules-result", { hasText: "Valid" }).waitFor(WAIT);
    await page.selectOption("#whatif-since", "1d");
    await page.click("#rules-whatif");
    await page.locator("#whatif-summary li", { hasText: "newly escalated: I want to cancel order 10009" }).waitFor(WAIT);
    await page.frameLocator("#whatif-page").locator("h1", { hasText: "What-if" }).waitFor(WAIT);
    await page.screenshot({ path: join(out, "lead-rules-whatif.png"), fullPage: true });

    // Apply: version 2 in force, and the next cancellation goes to a person.
    await page.click("#rules-apply");
    await page.locator("#rules-result", { hasText: "Version 2 is in force" }).waitFor(WAIT);
    await page.locator("#rules-state", { hasText: "Version 2 of the rules is in force" }).waitFor(WAIT);
    const other = await launch();
    try {
      const shop2 = other.page;
      await shop2.goto(url + "/");
      await shop2.locator("#frontdesk-widget .bubble").click();
      const panel2 = shop2.locator("#frontdesk-widget .panel");
      await panel2.locator(".conn", { hasText: "online" }).waitFor(WAIT);
      await say(shop2, "please cancel my order 10002");
      await panel2.locator(".status", { hasText: "in line" }).waitFor(WAIT);
    } finally {
      await other.close();
    }

    // The other lead pages.
    await page.click('#tabs button[data-tab="intents"]');
    await page.locator('#intents-table tr[data-intent="cancel_order"]').waitFor(WAIT);
    await page.click('#intents-table tr[data-intent="cancel_order"]');
    await page.locator("#intent-text").waitFor(WAIT);
    await page.screenshot({ path: join(out, "lead-intents.png"), fullPage: true });
    await page.click('#tabs button[data-tab="history"]');
    await page.locator("#history td", { hasText: "edit by ana" }).waitFor(WAIT);
    await page.locator("#history tr", { hasText: "edit by ana" }).locator("button", { hasText: "diff" }).click();
    await page.locator("#diff", { hasText: "cancellations to a person" }).waitFor(WAIT);
    await page.screenshot({ path: join(out, "lead-history.png"), fullPage: true });
    await page.click('#tabs button[data-tab="unanswered"]');
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(out, "lead-unanswered.png"), fullPage: true });
    await page.click('#tabs button[data-tab="feedback"]');
    await page.locator("#feedback p").first().waitFor(WAIT);
    await page.screenshot({ path: join(out, "lead-feedback.png"), fullPage: true });
    await page.click('#tabs button[data-tab="reports"]');
    const report = page.locator("#reports a", { hasText: "intents.html" });
    await report.waitFor(WAIT);
    await page.screenshot({ path: join(out, "lead-reports.png"), fullPage: true });
    await page.goto(url + "/console/reports/intents.html");
    await page.locator("svg").first().waitFor(WAIT);
    await page.screenshot({ path: join(out, "report-intents.png"), fullPage: true });
    console.log("lead browser test passed; screenshots in " + out);
  } finally {
    for (const b of [visitor, lead]) await b.close();
  }
}

main().catch((e) => {
  console.error("lead browser test failed:", e);
  process.exit(1);
});
