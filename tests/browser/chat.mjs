// A visitor chats in the widget on the demo shop page; an agent logs into the console,
// claims the conversation and answers; the visitor sees the answer live, and again after a
// reload; the agent closes it, the visitor rates it with the widget's stars and the console's
// API shows the rating. Usage: node chat.mjs http://127.0.0.1:PORT SCREENSHOT_DIR
import { join } from "node:path";
import { launch, WAIT } from "./launch.mjs";

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node chat.mjs SERVER_URL SCREENSHOT_DIR");
  process.exit(2);
}


async function main() {
  const visitor = await launch();
  const agent = await launch();
  try {
    // The visitor opens the shop and the chat bubble.
    const shop = visitor.page;
    await shop.goto(url + "/");
    await shop.locator("#frontdesk-widget .bubble").click();
    const panel = shop.locator("#frontdesk-widget .panel");
    await panel.locator(".conn", { hasText: "online" }).waitFor(WAIT);

    // A routine question, answered by the bot once the visitor shows the order is theirs
    // (orders are private: the bot asks for the email or postcode on it first).
    const input = panel.locator("input[name=text]");
    await input.fill("where is my order 10001");
    await input.press("Enter");
    await panel.locator(".msg.bot", { hasText: "postcode" }).waitFor(WAIT);
    await input.fill("emma.becker@example.com");
    await input.press("Enter");
    await panel.locator(".msg.bot", { hasText: "on its way" }).waitFor(WAIT);

    // Then the visitor asks for a person and is told their place in the queue.
    await input.fill("I want to talk to a human agent");
    await input.press("Enter");
    await panel.locator(".status", { hasText: "number 1 in line" }).waitFor(WAIT);

    // The agent logs in, sees the waiting customer and claims the conversation.
    const console_ = agent.page;
    await console_.goto(url + "/console");
    await console_.waitForURL("**/console/login");
    await console_.fill("input[name=name]", process.env.AGENT_NAME);
    await console_.fill("input[name=password]", process.env.AGENT_PASSWORD);
    await console_.click("button[type=submit]");
    await console_.waitForURL(/\/console$/);
    const entry = console_.locator('#queues .queue[data-queue="general"] .entry').first();
    await entry.waitFor(WAIT);
    const conversationId = await entry.getAttribute("data-conversation");
    await entry.click();
    await console_.locator("#transcript .m.customer", { hasText: "human agent" }).waitFor(WAIT);
    await console_.screenshot({ path: join(out, "console-queue.png") });
    await console_.locator("#claim").click();
    await console_.locator("#chat-status", { hasText: "with agent" }).waitFor(WAIT);
    // One click tells the lead's figures this escalation was needed.
    await console_.locator('#marks button[data-mark="needed"]').click();
    await console_.locator("#marks-said", { hasText: "Marked: escalation needed" }).waitFor(WAIT);

    // The visitor is told a person joined.
    await panel.locator(".status", { hasText: "chatting with a person" }).waitFor(WAIT);

    // The agent answers; the visitor sees it live.
    const answer = "Hi, this is Ana. Your order 10001 is on its way; I will keep an eye on it.";
    await console_.fill("#reply-text", answer);
    await console_.press("#reply-text", "Enter");
    await console_.locator("#transcript .m.agent", { hasText: "keep an eye on it" }).waitFor(WAIT);
    await panel.locator(".msg.agent", { hasText: "keep an eye on it" }).waitFor(WAIT);
    await shop.screenshot({ path: join(out, "widget.png") });
    await console_.screenshot({ path: join(out, "console.png") });

    // A reload resumes the same conversation with its history.
    await shop.reload();
    await shop.locator("#frontdesk-widget .bubble").click();
    await panel.locator(".msg.agent", { hasText: "keep an eye on it" }).waitFor(WAIT);
    await panel.locator(".msg.customer", { hasText: "where is my order 10001" }).waitFor(WAIT);
    await shop.screenshot({ path: join(out, "widget-after-reload.png") });

    // The agent closes the conversation: the visitor is asked to rate it with stars, and a
    // click stores the rating on the conversation, as the console's API shows.
    await console_.locator("#close").click();
    await console_.locator("#chat-status", { hasText: "closed" }).waitFor(WAIT);
    const star = panel.locator('.survey button[data-score="5"]');
    await star.waitFor(WAIT);
    await shop.screenshot({ path: join(out, "widget-survey.png") });
    await star.click();
    await panel.locator(".msg.bot", { hasText: "Thank you for your rating" }).waitFor(WAIT);
    if (await panel.locator(".survey").count() !== 0) throw new Error("the stars stay after the answer");
    const rating = await console_.evaluate(async (id) => {
      const r = await fetch("/console/api/conversations/" + id, { credentials: "same-origin" });
      return (await r.json()).rating;
    }, conversationId);
    if (!rating || rating.csat !== 5) {
      throw new Error("the console does not show the rating 5: " + JSON.stringify(rating));
    }

    console.log("browser test passed; screenshots in " + out);
  } finally {
    for (const b of [visitor, agent]) await b.close();
  }
}

main().catch((e) => {
  console.error("browser test failed:", e);
  process.exit(1);
});
