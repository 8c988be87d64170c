/* frontdesk lead's cockpit: rules (check, what-if, apply), intents with their figures and
 * edits, the version history of everything watched (diff, roll back), the unanswered
 * inbox, the agents' feedback per rule, the evaluation reports. Every text from the server
 * is put in with textContent; the what-if page is shown in a sandboxed frame. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var api = FD.api, el = FD.el;

  function say(box, ok, text) {
    box.className = "result " + (ok ? "good" : "bad");
    box.textContent = text;
  }

  function pct(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + "%"; }

  function stateBanner(box, kind, data) {
    var s = data.state || {};
    if (s.refused) {
      box.className = "banner refused";
      box.textContent = "A change of the " + kind + " was refused: " + s.refused.file +
        (s.refused.line ? ":" + s.refused.line : "") + ": " + s.refused.reason +
        ". Version " + s.version + " stays in force.";
    } else {
      box.className = "banner";
      box.textContent = "Version " + s.version + " of the " + kind + " is in force" +
        (data.built_in ? " (built in: run frontdesk init to get files of your own)" : "") + ".";
    }
  }

  // ---- tabs
  var loaders = {};
  function show(tab) {
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.classList.toggle("on", b.getAttribute("data-tab") === tab);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".page"), function (p) {
      p.hidden = p.id !== "tab-" + tab;
    });
    if (loaders[tab]) loaders[tab]();
  }
  Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
    b.addEventListener("click", function () { show(b.getAttribute("data-tab")); });
  });

  // ---- rules
  loaders.rules = function () {
    api("GET", "/console/api/config/rules").then(function (data) {
      stateBanner($("rules-state"), "rules", data);
      $("rules-file").textContent = data.file;
      if (!$("rules-text").dataset.touched) $("rules-text").value = data.text || "";
    }).catch(function (e) { say($("rules-result"), false, e.message); });
  };
  $("rules-text").addEventListener("input", function () { $("rules-text").dataset.touched = "1"; });
  $("rules-check").addEventListener("click", function () {
    api("POST", "/console/api/config/rules/check", { text: $("rules-text").value }).then(function (r) {
      if (r.ok) say($("rules-result"), true, "Valid: the server would take it.");
      else say($("rules-result"), false, r.problem.file + (r.problem.line ? ":" + r.problem.line : "") + ": " + r.problem.reason);
    }).catch(function (e) { say($("rules-result"), false, e.message); });
  });
  $("rules-whatif").addEventListener("click", function () {
    say($("rules-result"), true, "Replaying the conversations under both…");
    api("POST", "/console/api/config/rules/whatif",
      { text: $("rules-text").value, since: $("whatif-since").value }).then(function (w) {
      say($("rules-result"), true, "");
      $("whatif").hidden = false;
      var box = $("whatif-summary");
      box.textContent = "";
      box.appendChild(el("p", null, w.conversations + " conversations: escalated " + w.escalated_before +
        " now, " + w.escalated_after + " with the change; " + w.changed.length + " change their fate."));
      var list = el("ul");
      w.changed.forEach(function (c) {
        list.appendChild(el("li", "changed", c.change.replace(/_/g, " ") + ": " + c.first_message +
          " (" + (c.before_queue || "bot") + " → " + (c.after_queue || "bot") + ")"));
      });
      box.appendChild(list);
      $("whatif-page").srcdoc = w.html;
    }).catch(function (e) { say($("rules-result"), false, e.message); });
  });
  $("rules-apply").addEventListener("click", function () {
    api("PUT", "/console/api/config/rules", { text: $("rules-text").value }).then(function (v) {
      say($("rules-result"), true, "Version " + v.version + " is in force (" + v.summary + ").");
      delete $("rules-text").dataset.touched;
      loaders.rules();
    }).catch(function (e) { say($("rules-result"), false, e.message); });
  });

  // ---- intents
  var intentsText = "";
  function section(text, file) {
    var mark = "==> " + file + " <==\n";
    var at = text.indexOf(mark);
    if (at < 0) return null;
    var rest = text.slice(at + mark.length);
    var end = rest.indexOf("\n==> ");
    return end < 0 ? rest : rest.slice(0, end + 1);
  }
  loaders.intents = function () {
    api("GET", "/console/api/config/intents").then(function (data) {
      stateBanner($("intents-state"), "intents", data);
      intentsText = data.text || "";
    });
    api("GET", "/console/api/intents?since=30d").then(function (data) {
      var body = document.querySelector("#intents-table tbody");
      body.textContent = "";
      data.intents.forEach(function (i) {
        var tr = el("tr", "click");
        tr.setAttribute("data-intent", i.name);
        [i.name, i.examples.length, i.messages, pct(i.mean_confidence), i.wrong_answers].forEach(function (v) {
          tr.appendChild(el("td", null, v));
        });
        tr.addEventListener("click", function () { openIntent(i); });
        body.appendChild(tr);
      });
    });
  };
  function openIntent(i) {
    $("intent-detail").hidden = false;
    $("intent-name").textContent = i.name + " — " + i.description;
    $("intent-text").value = section(intentsText, i.name + ".yaml") || "";
    $("intent-text").setAttribute("data-file", i.name + ".yaml");
    say($("intent-result"), true, "");
  }
  $("intent-save").addEventListener("click", function () {
    var file = $("intent-text").getAttribute("data-file");
    var old = section(intentsText, file);
    if (old === null) { say($("intent-result"), false, "reload the page: the intents changed"); return; }
    var body = $("intent-text").value;
    if (body.slice(-1) !== "\n") body += "\n";
    var text = intentsText.replace("==> " + file + " <==\n" + old, "==> " + file + " <==\n" + body);
    say($("intent-result"), true, "Checking and retraining the intent head…");
    api("PUT", "/console/api/config/intents", { text: text }).then(function (v) {
      say($("intent-result"), true, "Version " + v.version + " of the intents is in force (" + v.summary + ").");
      loaders.intents();
    }).catch(function (e) { say($("intent-result"), false, e.message); });
  });

  // ---- history of every watched kind
  loaders.history = function () {
    api("GET", "/console/api/config").then(function (data) {
      var box = $("history");
      box.textContent = "";
      data.kinds.forEach(function (k) {
        var part = el("div", "kind");
        part.appendChild(el("h2", null, k.kind + " — " + k.place));
        var table = el("table", "grid");
        part.appendChild(table);
        box.appendChild(part);
        api("GET", "/console/api/config/" + k.kind).then(function (one) {
          one.versions.forEach(function (v) {
            var tr = el("tr");
            tr.appendChild(el("td", null, "v" + v.id + (v.id === one.state.version ? " (in force)" : "")));
            tr.appendChild(el("td", null, new Date(v.time).toLocaleString()));
            tr.appendChild(el("td", null, v.author));
            tr.appendChild(el("td", null, v.summary));
            var actions = el("td");
            var diff = el("button", null, "diff");
            diff.addEventListener("click", function () {
              api("GET", "/console/api/config/" + k.kind + "/versions/" + v.id).then(function (d) {
                $("diff").hidden = false;
                $("diff").textContent = d.diff;
              });
            });
            actions.appendChild(diff);
            if (!one.built_in && v.id !== one.state.version) {
              var back = el("button", null, "roll back to this");
              back.addEventListener("click", function () {
                api("POST", "/console/api/config/" + k.kind + "/versions/" + v.id + "/rollback")
                  .then(loaders.history).catch(function (e) { alert(e.message); });
              });
              actions.appendChild(back);
            }
            tr.appendChild(actions);
            table.appendChild(tr);
          });
        });
      });
    });
  };

  // ---- unanswered inbox
  loaders.unanswered = function () {
    api("GET", "/console/api/unanswered?since=30d").then(function (data) {
      var box = $("unanswered");
      box.textContent = "";
      if (!data.groups.length) box.appendChild(el("p", "none", "Nothing unanswered."));
      data.groups.forEach(function (g) {
        var div = el("div", "group");
        div.appendChild(el("b", null, g.count + " messages"));
        div.appendChild(el("span", "meta", " · " + g.kinds.join(", ") + " · last " + new Date(g.last_seen).toLocaleString()));
        var ul = el("ul");
        g.examples.forEach(function (x) { ul.appendChild(el("li", null, x)); });
        div.appendChild(ul);
        var make = el("button", null, "Make an intent");
        make.addEventListener("click", function () {
          var name = prompt("Name of the new intent (lowercase, underscores):");
          if (!name) return;
          var answer = prompt("What should the bot answer?") || undefined;
          api("POST", "/console/api/unanswered/" + g.id + "/intent", { name: name, answer: answer })
            .then(function (r) { alert("Written " + r.file + ": the intents reload picks it up."); loaders.unanswered(); })
            .catch(function (e) { alert(e.message); });
        });
        var draft = el("button", null, "Draft a help article");
        draft.addEventListener("click", function () {
          var title = prompt("Title of the article:");
          if (!title) return;
          api("POST", "/console/api/unanswered/" + g.id + "/article", { title: title })
            .then(function (r) { alert("Draft written: " + (r.file || "done")); })
            .catch(function (e) { alert(e.message); });
        });
        div.appendChild(make);
        div.appendChild(draft);
        box.appendChild(div);
      });
    }).catch(function (e) { $("unanswered").textContent = e.message; });
  };

  // ---- feedback
  loaders.feedback = function () {
    api("GET", "/console/api/feedback?since=30d").then(function (data) {
      var box = $("feedback");
      box.textContent = "";
      box.appendChild(el("p", null, data.escalation_marks + " escalation marks on " + data.marked_conversations +
        " conversations; " + data.wrong_answers + " wrong bot answers."));
      var table = el("table", "grid");
      var head = el("tr");
      ["rule", "needed", "not needed", "precision", "by observed value"].forEach(function (h) { head.appendChild(el("th", null, h)); });
      table.appendChild(head);
      (data.rules || []).forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", null, r.rule));
        tr.appendChild(el("td", null, r.tally.needed));
        tr.appendChild(el("td", null, r.tally.not_needed));
        tr.appendChild(el("td", null, pct(r.tally.precision)));
        tr.appendChild(el("td", "meta", (r.buckets || []).map(function (b) {
          return b.from + "–" + b.to + ": " + pct(b.tally.precision);
        }).join("  ")));
        table.appendChild(tr);
      });
      box.appendChild(table);
      if ((data.wrong_answers_per_intent || []).length) {
        box.appendChild(el("h2", null, "Wrong answers by intent"));
        var ul = el("ul");
        data.wrong_answers_per_intent.forEach(function (i) { ul.appendChild(el("li", null, i.intent + ": " + i.answers)); });
        box.appendChild(ul);
      }
    }).catch(function (e) { $("feedback").textContent = e.message; });
  };

  // ---- reports
  loaders.reports = function () {
    api("GET", "/console/api/reports").then(function (data) {
      var ul = $("reports");
      ul.textContent = "";
      if (!data.reports.length) ul.appendChild(el("li", "none", "No reports yet."));
      data.reports.forEach(function (r) {
        var li = el("li");
        var a = el("a", null, r.name);
        a.href = "/console/reports/" + encodeURIComponent(r.name);
        a.target = "_blank";
        a.rel = "noopener";
        li.appendChild(a);
        li.appendChild(el("span", "meta", " " + Math.round(r.size / 1024) + " kB, " + new Date(r.modified).toLocaleString()));
        ul.appendChild(li);
      });
    });
  };

  api("GET", "/console/api/me").then(function (me) { $("me").textContent = me.display_name || me.name; });
  show("rules");
})();
