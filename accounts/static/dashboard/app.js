// emailapi dashboard: copy buttons, confirmations, busy buttons, and live mailbox states and
// events: every event of the tenant's stream (/dashboard/stream, Server-Sent Events, which the
// session cookie authenticates: no token in any URL) makes the page fetch /dashboard/live.json
// at once; a poll every 10 s backs the stream up. No framework.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else { document.execCommand("copy"); done(); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    var busy = form.getAttribute("data-busy");
    var submit = form.querySelector("button[type=submit]");
    if (busy && submit) { submit.disabled = true; submit.textContent = busy; }
  });

  function text(node, value) { if (node && node.textContent !== value) node.textContent = value; }

  // The one way a moment is written, as the server writes it (templatetags ``when``):
  // "2026-12-03 07:34:21 UTC".
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function when(iso) {
    var d = new Date(iso);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }
  function timeNode(iso) {
    var node = document.createElement("time");
    node.setAttribute("datetime", iso);
    node.textContent = when(iso);
    return node;
  }
  function span(className, children) {
    var node = document.createElement("span");
    node.className = className;
    children.forEach(function (c) { node.append(c); });
    return node;
  }

  // A mailbox's last error, built like templates/dashboard/_last_error.html.
  function showError(node, info) {
    var key = [info.lastError, info.lastErrorAt, info.nextRetry].join("|");
    if (node.getAttribute("data-shown") === key) return;
    node.setAttribute("data-shown", key);
    if (!info.lastError) { node.replaceChildren(node.getAttribute("data-none") || ""); return; }
    var parts = [span("error", [info.lastError])];
    if (info.lastErrorAt) parts.push(" ", span("muted", ["at ", timeNode(info.lastErrorAt)]));
    if (info.nextRetry) parts.push(" ", span("muted", ["· next try ", timeNode(info.nextRetry)]));
    node.replaceChildren.apply(node, parts);
  }

  function apply(data) {
    Object.keys(data.mailboxes).forEach(function (account) {
      var info = data.mailboxes[account];
      document.querySelectorAll("[data-live-state]").forEach(function (node) {
        if (node.getAttribute("data-live-state") !== account) return;
        text(node, info.state);
        node.className = "state state-" + info.state;
      });
      document.querySelectorAll("[data-live-error]").forEach(function (node) {
        if (node.getAttribute("data-live-error") === account) showError(node, info);
      });
    });
    text(document.querySelector("[data-live=events-today]"), String(data.eventsToday));
    var body = document.querySelector("[data-live=events] tbody");
    if (body && data.events.length) {
      body.replaceChildren.apply(body, data.events.map(function (e) {
        var row = document.createElement("tr");
        [["Time", timeNode(e.createdAt)], ["Event", e.event], ["Mailbox", e.account],
         ["Folder", e.path]].forEach(function (pair) {
          var cell = document.createElement("td");
          cell.setAttribute("data-label", pair[0]);
          cell.append(pair[1] || "");
          row.appendChild(cell);
        });
        return row;
      }));
    }
  }

  function poll() {
    if (document.hidden) return;
    fetch("/dashboard/live.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () { /* offline for a moment: the next poll catches up */ });
  }

  var pending = null;
  function soon() {  // a burst of events costs one fetch
    window.emailapiStreamEvents = (window.emailapiStreamEvents || 0) + 1;  // for tests
    if (pending) return;
    pending = setTimeout(function () { pending = null; poll(); }, 150);
  }

  if (document.querySelector("[data-live-state], [data-live]")) {
    var stream = document.querySelector("[data-stream]");
    var url = stream && stream.getAttribute("data-stream");
    if (url && window.EventSource) {
      var source = new EventSource(url);
      // The event names come from the server's one list (webhooks.events.ALL).
      var names = (stream.getAttribute("data-stream-events") || "").split(" ");
      names.forEach(function (name) { if (name) source.addEventListener(name, soon); });
      source.addEventListener("open", function () {  // catch up on what came before
        window.emailapiStreamOpen = true;  // for tests
        poll();
      });
      setInterval(poll, 10000);
    } else {
      setInterval(poll, 2000);
    }
  }
})();
