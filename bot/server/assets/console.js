/* frontdesk agent console: queues, claim, transcript, reply, hand back, close.
 * Live: a WebSocket at /console/ws pushes desk events; waiting times tick every few seconds. */
(function () {
  "use strict";
  var me = null, selected = null, queues = [], socket = null;
  var $ = function (id) { return document.getElementById(id); };
  var api = FD.api, el = FD.el;

  function duration(secs) {
    if (secs < 60) return secs + "s";
    var m = Math.floor(secs / 60), s = secs % 60;
    if (m < 60) return m + "m " + (s < 10 ? "0" : "") + s + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }

  function mood(neg) {
    if (neg >= 0.6) return ["negative", "upset " + Math.round(neg * 100) + "%"];
    if (neg >= 0.35) return ["neutral", "uneasy " + Math.round(neg * 100) + "%"];
    return ["positive", "calm " + Math.round(neg * 100) + "%"];
  }

  function reasonText(r) {
    var v = typeof r.value === "object" ? JSON.stringify(r.value) : r.value;
    if (typeof r.value === "number") v = Math.round(r.value * 100) / 100;
    var more = r.details && r.details.length ? " — " + r.details.join(", ") : "";
    return r.rule + " (" + r.when + ": " + v + more + ")";
  }

  // The conversation's frustration score (0..1) and its reasons, as one short line.
  function frustrationText(score, reasons) {
    if (!score) return "frustration 0";
    return "frustration " + Math.round(score * 100) + "%" +
      (reasons && reasons.length ? ": " + reasons.join(", ") : "");
  }

  function renderQueues() {
    var box = $("queues");
    box.innerHTML = "";
    queues.forEach(function (q) {
      var div = el("div", "queue");
      div.dataset.queue = q.name;
      var head = el("div", "qhead");
      head.appendChild(el("span", null, q.name + " (" + q.entries.length + ")"));
      head.appendChild(el("small", null, "SLA " + duration(q.sla_secs)));
      div.appendChild(head);
      if (!q.entries.length) div.appendChild(el("div", "none", "Nobody waiting"));
      q.entries.forEach(function (e) {
        var row = el("div", "entry" + (e.sla_breached ? " breach" : "") + (selected === e.conversation_id ? " sel" : ""));
        row.dataset.conversation = e.conversation_id;
        var top = el("div", "row");
        top.appendChild(el("b", null, "#" + e.position + " " + e.customer));
        top.appendChild(el("span", "wait", duration(e.waiting_secs) + (e.sla_breached ? " — over SLA" : "")));
        row.appendChild(top);
        var mid = el("div", "row");
        var m = mood(e.sentiment);
        var pills = el("span");
        pills.appendChild(el("span", "pill prio", "priority " + e.priority));
        pills.appendChild(document.createTextNode(" "));
        pills.appendChild(el("span", "pill " + m[0], m[1]));
        pills.appendChild(document.createTextNode(" "));
        pills.appendChild(el("span", "pill", e.channel));
        mid.appendChild(pills);
        row.appendChild(mid);
        row.appendChild(el("div", "frustration", frustrationText(e.frustration, e.frustration_reasons)));
        row.appendChild(el("div", "reasons", e.reasons.map(reasonText).join("; ")));
        row.addEventListener("click", function () { open(e.conversation_id); });
        div.appendChild(row);
      });
      box.appendChild(div);
    });
    var mine = $("mine");
    mine.innerHTML = "";
    if (!me || !me.conversations.length) mine.appendChild(el("div", "none", "None yet"));
    (me ? me.conversations : []).forEach(function (id) {
      var row = el("div", "entry" + (selected === id ? " sel" : ""), "Conversation " + id.slice(0, 8));
      row.dataset.conversation = id;
      row.addEventListener("click", function () { open(id); });
      mine.appendChild(row);
    });
  }

  function refresh() {
    return Promise.all([api("GET", "/console/api/queues"), api("GET", "/console/api/me")])
      .then(function (r) {
        queues = r[0]; me = r[1];
        $("me").textContent = me.display_name + " · " + me.active + "/" + me.capacity;
        renderQueues();
      }).catch(function (e) { console.warn(e); });
  }

  function open(id) {
    if (selected !== id) $("canned-search").value = "";
    selected = id;
    renderQueues();
    return loadTranscript();
  }

  function loadTranscript() {
    if (!selected) return Promise.resolve();
    return api("GET", "/console/api/conversations/" + selected).then(renderTranscript)
      .then(loadCanned)
      .catch(function (e) { $("chat-error").textContent = e.message; });
  }

  // Canned replies matching the search box, filled in for the open conversation. Picking
  // one puts it in the reply box to edit: nothing is sent until the agent presses Send.
  function loadCanned() {
    if (!selected) return Promise.resolve();
    var id = selected, q = $("canned-search").value.trim();
    return api("GET", "/console/api/conversations/" + id + "/canned?q=" + encodeURIComponent(q))
      .then(function (data) {
        if (selected !== id || $("canned-search").value.trim() !== q) return;
        $("suggest").hidden = !data.can_suggest;
        var box = $("canned");
        box.innerHTML = "";
        if (!data.replies.length) box.appendChild(el("span", "none", "No canned reply matches “" + q + "”"));
        data.replies.forEach(function (r) {
          var b = el("button", "canned", r.title);
          b.type = "button";
          b.title = r.text;
          b.addEventListener("click", function () { fillReply(r.text); });
          box.appendChild(b);
        });
      })
      .catch(function (e) { $("chat-error").textContent = e.message; });
  }

  function fillReply(text) {
    var box = $("reply-text");
    if (box.disabled) {
      $("chat-error").textContent = "Claim the conversation first: only its agent can reply.";
      return;
    }
    $("chat-error").textContent = "";
    box.value = text;
    box.focus();
    box.setSelectionRange(text.length, text.length);
  }

  var searchTimer = null;
  $("canned-search").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(loadCanned, 200);
  });

  $("suggest").addEventListener("click", function () {
    if (!selected) return;
    if ($("reply-text").disabled) {
      $("chat-error").textContent = "Claim the conversation first: only its agent can reply.";
      return;
    }
    var button = $("suggest"), id = selected;
    button.disabled = true;
    button.textContent = "Drafting…";
    $("chat-error").textContent = "";
    api("POST", "/console/api/conversations/" + id + "/suggest")
      .then(function (data) { if (selected === id) fillReply(data.text); })
      .catch(function (e) { $("chat-error").textContent = e.message; })
      .then(function () { button.disabled = false; button.textContent = "Suggest reply"; });
  });

  function renderTranscript(c) {
    $("empty").hidden = true;
    $("chat").hidden = false;
    $("chat-error").textContent = "";
    var who = c.channel_user + (c.tier ? " · " + c.tier : "") +
      (c.lifetime_value != null ? " · LTV " + c.lifetime_value : "");
    $("chat-customer").textContent = who;
    $("chat-status").textContent = c.status.replace("_", " ");
    $("chat-meta").textContent = c.channel + " · " + (c.queue ? "queue " + c.queue + " · " : "") +
      (c.assigned_agent ? "with " + (c.agent_names[c.assigned_agent] || c.assigned_agent) + " · " : "") +
      "since " + new Date(c.created).toLocaleString();
    var mineNow = me && c.assigned_agent === me.name;
    $("claim").disabled = c.status !== "queued";
    $("handback").disabled = !mineNow;
    $("verify").disabled = !mineNow;
    $("block").disabled = c.status === "closed";
    $("close").disabled = c.status === "closed" || (c.status === "with_agent" && !mineNow);
    $("reply-text").disabled = !mineNow;
    $("summary").textContent = c.summary && c.status !== "bot" ? c.summary.text : "";
    // The AI assistant's summary, when the LLM wrote one, above the local summary.
    $("ai-summary").hidden = !c.llm_summary;
    $("ai-summary-text").textContent = c.llm_summary || "";
    $("frustration").textContent = frustrationText(c.frustration, c.frustration_reasons);
    $("reasons").textContent = c.escalation.length ? "Escalated: " + c.escalation.map(reasonText).join("; ") : "";
    // One click: was the escalation needed, was a bot answer wrong (the lead's figures).
    $("marks").hidden = c.status === "bot";
    Array.prototype.forEach.call(document.querySelectorAll("#marks button[data-mark]"), function (b) {
      if (b.getAttribute("data-mark") !== "wrong_answer") b.hidden = !c.escalation.length;
    });
    var t = $("transcript");
    t.innerHTML = "";
    c.messages.forEach(function (m) {
      var role = m.from.role;
      var div = el("div", "m " + role);
      var head = el("div", "who");
      var name = role === "agent" ? (c.agent_names[m.from.name] || m.from.name) : role;
      head.appendChild(el("b", null, name));
      head.appendChild(el("span", null, new Date(m.time).toLocaleTimeString()));
      if (m.analysis) {
        head.appendChild(el("span", "pill intent", m.analysis.intent + " " + Math.round(m.analysis.intent_confidence * 100) + "%"));
        head.appendChild(el("span", "pill " + m.analysis.sentiment, m.analysis.sentiment));
        if (m.analysis.anger >= 0.5) head.appendChild(el("span", "pill negative", "anger " + Math.round(m.analysis.anger * 100) + "%"));
      }
      div.appendChild(head);
      div.appendChild(document.createTextNode(m.text));
      div.dataset.time = m.time;
      t.appendChild(div);
    });
    // Replies the customer's platform refused for good, in their place in the timeline.
    (c.delivery_failures || []).forEach(function (f) {
      var note = el("div", "m failed");
      note.dataset.time = f.time;
      var head = el("div", "who");
      head.appendChild(el("b", null, "Not delivered on " + f.channel));
      head.appendChild(el("span", null, new Date(f.time).toLocaleTimeString()));
      note.appendChild(head);
      note.appendChild(el("div", null, "The customer did not get this reply: " + f.error +
        ". Reach them another way; later replies on " + f.channel + " will fail too."));
      note.appendChild(el("div", "undelivered", f.text));
      var after = Array.prototype.find.call(t.children, function (n) { return new Date(n.dataset.time) > new Date(f.time); });
      t.insertBefore(note, after || null);
    });
    t.scrollTop = t.scrollHeight;
  }

  function act(path, body) {
    if (!selected) return;
    $("chat-error").textContent = "";
    return api("POST", "/console/api/conversations/" + selected + "/" + path, body)
      .then(renderTranscript).then(refresh)
      .catch(function (e) { $("chat-error").textContent = e.message; });
  }

  $("claim").addEventListener("click", function () { act("claim"); });
  $("handback").addEventListener("click", function () { act("hand_back"); });
  $("verify").addEventListener("click", function () {
    var order = window.prompt("Order number the customer asks about:");
    if (!order || !order.trim()) return;
    var proof = window.prompt("Email address or postcode on order " + order.trim() + ", as the customer told you (the shop checks it):");
    if (proof && proof.trim()) act("verify", { order: order.trim(), proof: proof.trim() });
  });
  $("close").addEventListener("click", function () { act("close"); });
  $("block").addEventListener("click", function () {
    if (!selected) return;
    var reason = window.prompt("Why is this customer blocked? (other agents will read it)");
    if (!reason || !reason.trim()) return;
    $("chat-error").textContent = "";
    api("POST", "/console/api/conversations/" + selected + "/block", { reason: reason.trim() })
      .then(function () { return api("GET", "/console/api/conversations/" + selected); })
      .then(renderTranscript).then(refresh)
      .catch(function (e) { $("chat-error").textContent = e.message; });
  });
  // Enter sends; Shift+Enter starts a new line.
  $("reply-text").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("reply").requestSubmit();
    }
  });
  $("reply").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("reply-text").value.trim();
    if (!text) return;
    $("reply-text").value = "";
    act("reply", { text: text });
  });
  $("logout").addEventListener("click", function () {
    // Logging out also makes the agent away: their chats go back to their queues.
    api("POST", "/console/api/logout").catch(function () {})
      .then(function () { location.href = "/console/login"; });
  });

  // Availability: agents start away; "Available" lets the desk give them waiting customers
  // by itself, "Away" puts their conversations back at their place in the queues.
  var available = false;
  function renderAvailability(a) {
    available = a.available;
    var b = $("availability");
    b.textContent = a.available ? "Available" : "Away";
    b.className = "pill " + (a.available ? "on" : "off");
    b.title = !a.auto_assign ? "Auto-assignment is off: claim customers from the queues" :
      a.available ? "You get waiting customers by yourself. Press to go away: your conversations go back to their queues" :
      "You are away: press to get waiting customers by yourself";
  }
  $("availability").addEventListener("click", function () {
    if (available && !window.confirm("Go away? Your conversations go back to their queues for the others.")) return;
    api("POST", "/console/api/me/availability", { available: !available })
      .then(function (a) { renderAvailability(a); refresh(); })
      .catch(function (e) { window.alert(e.message); });
  });
  api("GET", "/console/api/me/availability").then(renderAvailability).catch(function (e) { console.warn(e); });

  // Conversation search: one field (words, customer or order number) and a date window.
  $("search").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var params = new URLSearchParams(), value = $("search-value").value.trim();
    if (value) params.set($("search-field").value, value);
    if ($("search-from").value) params.set("from", $("search-from").value);
    if ($("search-to").value) params.set("to", $("search-to").value);
    var box = $("search-results");
    box.innerHTML = "";
    api("GET", "/console/api/search?" + params.toString()).then(function (data) {
      if (!data.results.length) box.appendChild(el("div", "none", "Nothing found"));
      data.results.forEach(function (c) {
        var row = el("div", "entry" + (selected === c.id ? " sel" : ""));
        var top = el("div", "row");
        top.appendChild(el("b", null, c.channel_user + " · " + c.channel));
        top.appendChild(el("span", "pill", c.status.replace("_", " ")));
        row.appendChild(top);
        row.appendChild(el("div", "meta", new Date(c.created).toLocaleString() +
          (c.assigned_agent ? " · with " + c.assigned_agent : "") + (c.queue ? " · queue " + c.queue : "")));
        if (c.snippet) row.appendChild(el("div", "snippet", c.snippet));
        row.addEventListener("click", function () { open(c.id); });
        box.appendChild(row);
      });
      if (!data.complete) box.appendChild(el("div", "none", "Only part of the conversations were searched: narrow the search (a customer, a date window)."));
    }).catch(function (e) { box.appendChild(el("div", "none", e.message)); });
  });

  function live() {
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/console/ws");
    socket.onopen = function () { $("live").textContent = "live"; $("live").className = "pill on"; refresh(); };
    // Bursts of events cost one refresh.
    var pending = null, transcriptToo = false;
    socket.onmessage = function (ev) {
      var e = JSON.parse(ev.data);
      transcriptToo = transcriptToo || e.type === "resync" || e.conversation_id === selected;
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        refresh();
        if (transcriptToo) loadTranscript();
        transcriptToo = false;
      }, 150);
    };
    socket.onclose = function () {
      $("live").textContent = "offline"; $("live").className = "pill off";
      setTimeout(live, 2000);
    };
  }

  Array.prototype.forEach.call(document.querySelectorAll("#marks button[data-mark]"), function (b) {
    b.addEventListener("click", function () {
      if (!selected) return;
      var mark = b.getAttribute("data-mark");
      api("POST", "/console/api/conversations/" + encodeURIComponent(selected) + "/feedback", { mark: mark })
        .then(function () { $("marks-said").textContent = "Marked: " + b.textContent.toLowerCase() + ". Thank you."; })
        .catch(function (e) { $("marks-said").textContent = e.message; });
    });
  });

  // Leads and admins see the way to their cockpit.
  fetch("/console/api/config", { credentials: "same-origin" }).then(function (res) {
    if (res.ok) $("lead-link").hidden = false;
  });

  refresh();
  live();
  setInterval(refresh, 5000);
})();
