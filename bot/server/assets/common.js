/* Shared by the agent console and the lead's pages: the API call (the session's CSRF token
 * on every state-changing call; a lost session goes back to the login page) and building
 * elements (text is always set as text, never as HTML). */
var FD = (function () {
  "use strict";
  // The session's CSRF token: sent in X-CSRF-Token on every state-changing call.
  var csrf = fetch("/console/api/csrf", { credentials: "same-origin" })
    .then(function (res) { return res.ok ? res.json() : {}; })
    .then(function (data) { return data.csrf || ""; });

  function api(method, path, body) {
    return csrf.then(function (token) {
      var headers = body ? { "Content-Type": "application/json" } : {};
      if (method !== "GET") headers["X-CSRF-Token"] = token;
      return fetch(path, {
        method: method, credentials: "same-origin", headers: headers,
        body: body ? JSON.stringify(body) : undefined
      });
    }).then(function (res) {
      if (res.status === 401) { location.href = "/console/login"; throw new Error("logged out"); }
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw new Error((data.error && data.error.message) || res.statusText);
        return data;
      });
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  return { api: api, el: el };
})();
