/* frontdesk chat widget.
 *
 * Add one tag to any page:
 *   <script src="http://FRONTDESK_HOST/widget.js"></script>
 * Optional attributes:
 *   data-title="Help"                 header of the chat panel
 *   data-customer-token="TOKEN"       a customer your shop has signed in, signed on YOUR server
 *                                     with the frontdesk secret (see the README: "Trusted customers")
 *   data-open="true"                  open the panel on load
 * The visitor's identity is a token the server signs; it is kept in localStorage, so a
 * reload resumes the same conversation and shows its history.
 *
 * Every message gets an id of its own (a UUID) and stays in `outbox` until the server
 * answers it; after a reconnect, or when the server asks to slow down ("slow_down"), the
 * same frame with the same id is sent again, so the server handles it once. The page pings
 * while it is shown or a person may write, so the server's idle timeout only closes
 * sockets nobody looks at; after such a close (code 4000) it reconnects when the visitor
 * comes back.
 *
 * After an agent closes the conversation a "survey" frame may ask for a rating: the page
 * shows stars (CSAT 1-5) or 0-10 (NPS) and a Skip button; a click sends
 * {"type":"survey","conversation_id","survey","score"|"skip":true}.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__frontdeskWidget) return;
  window.__frontdeskWidget = true;

  var base = new URL(script.src, location.href);
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws";
  var title = script.getAttribute("data-title") || "Customer support";
  var customerToken = script.getAttribute("data-customer-token") || null;
  var storeKey = "frontdesk.token." + base.host;

  var host = document.createElement("div");
  host.id = "frontdesk-widget";
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    '<style>' +
    ':host{all:initial}' +
    '.fd{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}' +
    '.bubble{position:fixed;right:24px;bottom:24px;width:60px;height:60px;border-radius:50%;border:0;' +
    'background:#2f5bea;color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.25);z-index:2147483000}' +
    '.bubble .dot{position:absolute;top:6px;right:6px;width:14px;height:14px;border-radius:50%;background:#ff4d4f;display:none}' +
    '.bubble.unread .dot{display:block}' +
    '.panel{position:fixed;right:24px;bottom:96px;width:360px;max-width:calc(100vw - 32px);height:500px;max-height:calc(100vh - 120px);' +
    'background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.25);display:none;flex-direction:column;overflow:hidden;z-index:2147483000}' +
    '.panel.open{display:flex}' +
    '.head{background:#2f5bea;color:#fff;padding:12px 16px;display:flex;justify-content:space-between;align-items:center}' +
    '.head b{font-size:15px}.head small{opacity:.85;display:block;font-size:12px}' +
    '.head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}' +
    '.log{flex:1;overflow-y:auto;padding:12px;background:#f5f7fb;display:flex;flex-direction:column;gap:8px}' +
    '.msg{max-width:80%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}' +
    '.msg.customer{align-self:flex-end;background:#2f5bea;color:#fff;border-bottom-right-radius:4px}' +
    '.msg.bot{align-self:flex-start;background:#fff;border:1px solid #e1e5ee;border-bottom-left-radius:4px}' +
    '.msg.draft{opacity:.75}' +
    '.msg.agent{align-self:flex-start;background:#e8f7ee;border:1px solid #b7e4c7;border-bottom-left-radius:4px}' +
    '.msg .who{display:block;font-size:11px;font-weight:600;opacity:.7;margin-bottom:2px}' +
    '.note{align-self:center;font-size:12px;color:#5b6475;background:#eef1f7;border-radius:10px;padding:4px 10px}' +
    '.status{padding:6px 12px;font-size:12px;background:#fff8e1;color:#7a5b00;border-top:1px solid #f2e3b3;display:none}' +
    '.status.show{display:block}' +
    'form{display:flex;border-top:1px solid #e1e5ee;background:#fff}' +
    'input{flex:1;border:0;padding:12px;font:inherit;outline:none}' +
    'form button{border:0;background:#2f5bea;color:#fff;padding:0 16px;font:inherit;cursor:pointer}' +
    'form button:disabled{background:#9aaae0}' +
    '.survey{align-self:flex-start;display:flex;flex-wrap:wrap;gap:4px;max-width:90%}' +
    '.survey button{border:1px solid #c9d2e6;background:#fff;border-radius:8px;padding:4px 8px;font:inherit;cursor:pointer;color:#1d2330}' +
    '.survey button.star{font-size:20px;line-height:1;color:#e0a800;border:0;background:none;padding:2px}' +
    '.survey button.skip{color:#5b6475}' +
    '</style>' +
    '<div class="fd">' +
    '<button class="bubble" aria-label="Open chat"><svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg><span class="dot"></span></button>' +
    '<div class="panel" role="dialog" aria-label="Chat">' +
    '<div class="head"><div><b class="title"></b><small class="conn">connecting…</small></div>' +
    '<button class="close" aria-label="Close chat">&times;</button></div>' +
    '<div class="log" aria-live="polite"></div>' +
    '<div class="status"></div>' +
    '<form><input name="text" autocomplete="off" placeholder="Type your message…" maxlength="2000">' +
    '<button type="submit">Send</button></form>' +
    '</div></div>';
  document.body.appendChild(host);

  var $ = function (sel) { return root.querySelector(sel); };
  var bubble = $(".bubble"), panel = $(".panel"), log = $(".log"), form = $("form"),
      input = $("input"), statusBar = $(".status"), conn = $(".conn");
  $(".title").textContent = title;

  var ws = null, ready = false, backoff = 500, idleSecs = 0, pinger = null, paused = false;
  var status = null;
  // Messages not answered yet, in order: { id, frame, sent, timer }.
  var outbox = [];

  function newId() {
    var c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    var hex = "";
    for (var j = 0; j < 16; j++) hex += (bytes[j] + 256).toString(16).slice(1);
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // Sends what is not sent yet, in order; a message waiting out a "slow_down" holds back
  // the ones after it.
  function flush() {
    if (!ready) return;
    for (var i = 0; i < outbox.length; i++) {
      var m = outbox[i];
      if (m.timer) break;
      if (!m.sent) { ws.send(m.frame); m.sent = true; }
    }
  }

  function settle(id) {
    outbox = outbox.filter(function (m) {
      if (m.id !== id) return true;
      if (m.timer) clearTimeout(m.timer);
      return false;
    });
  }

  function seconds(n) { return n === 1 ? "1 second" : n + " seconds"; }

  function slowDown(m) {
    var secs = Math.max(1, Math.ceil(m.retry_after_secs || 1));
    add("note", m.message ||
      ("You're sending messages faster than we can read them \u2014 please wait " + seconds(secs) + "."));
    outbox.forEach(function (o) {
      if (o.id !== m.id) return;
      o.sent = false;
      if (o.timer) clearTimeout(o.timer);
      o.timer = setTimeout(function () { o.timer = null; flush(); }, secs * 1000);
    });
  }

  function wanted() {
    return document.visibilityState === "visible" || status === "queued" || status === "with_agent";
  }

  function startPinging() {
    if (pinger) clearInterval(pinger);
    pinger = null;
    if (!idleSecs) return;
    var every = Math.max(5, Math.min(240, Math.floor(idleSecs / 2))) * 1000;
    pinger = setInterval(function () {
      if (ready && wanted()) ws.send(JSON.stringify({ type: "ping" }));
    }, every);
  }

  function resume() {
    if (paused) { paused = false; backoff = 500; connect(); }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") resume();
  });

  function open(show) {
    panel.classList.toggle("open", show);
    if (show) { bubble.classList.remove("unread"); log.scrollTop = log.scrollHeight; input.focus(); }
  }
  bubble.addEventListener("click", function () { open(!panel.classList.contains("open")); });
  $(".close").addEventListener("click", function () { open(false); });

  function add(kind, text, who) {
    var div = document.createElement("div");
    div.className = kind === "note" ? "note" : "msg " + kind;
    if (who) {
      var w = document.createElement("span");
      w.className = "who";
      w.textContent = who;
      div.appendChild(w);
    }
    div.appendChild(document.createTextNode(text));
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    if (kind !== "customer" && !panel.classList.contains("open")) bubble.classList.add("unread");
  }

  // The bot's answer while it is being written (an LLM streaming): one bubble, replaced
  // in place, removed when the answer itself arrives or is withdrawn.
  var draft = null;
  function showDraft(text) {
    if (!draft) {
      draft = document.createElement("div");
      draft.className = "msg bot draft";
      log.appendChild(draft);
    }
    draft.textContent = text;
    log.scrollTop = log.scrollHeight;
  }
  function clearDraft() {
    if (draft) { draft.remove(); draft = null; }
  }

  // A survey question: its text, one button per score, and Skip; one shown at a time.
  var survey = null;
  function showSurvey(q) {
    if (survey) survey.remove();
    add("bot", q.text);
    survey = document.createElement("div");
    survey.className = "survey";
    var answer = function (extra) {
      if (!ready) return;
      var frame = { type: "survey", conversation_id: q.conversation_id, survey: q.survey };
      for (var k in extra) frame[k] = extra[k];
      ws.send(JSON.stringify(frame));
      survey.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    };
    var stars = q.survey === "csat";
    for (var n = q.min; n <= q.max; n++) {
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("data-score", String(n));
      b.setAttribute("aria-label", stars ? n + (n === 1 ? " star" : " stars") : String(n));
      b.className = stars ? "star" : "score";
      b.textContent = stars ? "\u2605" : String(n);
      b.addEventListener("click", (function (score) {
        return function () { answer({ score: score }); };
      })(n));
      survey.appendChild(b);
    }
    var skip = document.createElement("button");
    skip.type = "button";
    skip.className = "skip";
    skip.textContent = q.skip;
    skip.addEventListener("click", function () { answer({ skip: true }); });
    survey.appendChild(skip);
    log.appendChild(survey);
    log.scrollTop = log.scrollHeight;
  }
  function clearSurvey() {
    if (survey) { survey.remove(); survey = null; }
  }

  function showQueue(queue, st) {
    if (st) status = st;
    if (st === "queued" && queue) {
      statusBar.textContent = "Waiting for a person: you are number " + queue.position + " in line.";
      statusBar.classList.add("show");
    } else if (st === "with_agent") {
      statusBar.textContent = "You are chatting with a person from our team.";
      statusBar.classList.add("show");
    } else if (st !== "queued") {
      // A "queued" frame without a position keeps the last position shown.
      statusBar.classList.remove("show");
    }
  }

  function connect() {
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      backoff = 500;
      ws.send(JSON.stringify({
        type: "hello",
        token: localStorage.getItem(storeKey),
        customer_token: customerToken
      }));
    };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      switch (m.type) {
        case "welcome":
          localStorage.setItem(storeKey, m.token);
          ready = true;
          idleSecs = m.idle_secs || 0;
          startPinging();
          conn.textContent = "online";
          log.innerHTML = "";
          draft = null;
          (m.history || []).forEach(function (h) {
            add(h.from, h.text, h.from === "agent" ? h.agent : null);
          });
          if (!m.history || m.history.length === 0) add("bot", "Hi! How can we help you today?");
          showQueue(m.queue, m.status);
          if (m.status === "queued" && m.queue) add("note", "You are number " + m.queue.position + " in the " + m.queue.name + " queue.");
          survey = null;
          if (m.survey) showSurvey(m.survey);
          // Messages not answered before the socket closed go again, with their ids: the
          // server handles each once, even if it had read one already.
          outbox.forEach(function (o) { if (!o.timer) o.sent = false; });
          // The history above comes from the server; show what is still on its way too
          // (unless the server has it already and only its answer was lost).
          var recent = (m.history || []).filter(function (h) { return h.from === "customer"; })
            .slice(-outbox.length).map(function (h) { return h.text; });
          outbox.forEach(function (o) {
            var seen = recent.indexOf(o.text);
            if (seen >= 0) recent.splice(seen, 1); else add("customer", o.text);
          });
          flush();
          break;
        case "draft":
          showDraft(m.text);
          break;
        case "draft_cleared":
          clearDraft();
          break;
        case "turn":
          clearDraft();
          settle(m.id);
          (m.replies || []).forEach(function (r) { add("bot", r.text); });
          showQueue(m.queue, m.status);
          break;
        case "slow_down":
          slowDown(m);
          break;
        case "survey":
          showSurvey(m);
          break;
        case "survey_answered":
          clearSurvey();
          if (!m.counted) add("note", "This question is closed.");
          break;
        case "bot":
          clearDraft();
          add("bot", m.text);
          break;
        case "agent":
          add("agent", m.text, m.agent);
          showQueue(null, "with_agent");
          break;
        case "queue":
          showQueue({ name: m.queue, position: m.position }, "queued");
          break;
        case "status":
          showQueue(m.queue || null, m.status);
          if (m.status === "closed") add("note", "This conversation was closed. Write again any time.");
          if (m.status === "bot") add("note", "You are back with our assistant.");
          break;
        case "error":
          if (m.id != null) settle(m.id);
          add("note", m.message);
          break;
      }
    };
    ws.onclose = function (ev) {
      ready = false;
      if (pinger) { clearInterval(pinger); pinger = null; }
      if (ev.code === 4000) {
        // Closed for idleness: back when the visitor is.
        paused = true;
        conn.textContent = "away";
        return;
      }
      conn.textContent = "reconnecting…";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  input.addEventListener("focus", resume);
  bubble.addEventListener("click", resume);

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    add("customer", text);
    var id = newId();
    outbox.push({
      id: id,
      text: text,
      frame: JSON.stringify({ type: "message", id: id, text: text }),
      sent: false,
      timer: null
    });
    resume();
    flush();
  });

  connect();
  if (script.getAttribute("data-open") === "true") open(true);
})();
