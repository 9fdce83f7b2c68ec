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

  function apply(data) {
    Object.keys(data.mailboxes).forEach(function (account) {
      var info = data.mailboxes[account];
      document.querySelectorAll("[data-live-state]").forEach(function (node) {
        if (node.getAttribute("data-live-state") !== account) return;
        text(node, info.state);
        node.className = "state state-" + info.state;
      });
      document.querySelectorAll("[data-live-error]").forEach(function (node) {
        if (node.getAttribute("data-live-error") === account) text(node, info.lastError || "");
      });
    });
    text(document.querySelector("[data-live=events-today]"), String(data.eventsToday));
    var body = document.querySelector("[data-live=events] tbody");
    if (body && data.events.length) {
      body.replaceChildren.apply(body, data.events.map(function (e) {
        var row = document.createElement("tr");
        [new Date(e.createdAt).toLocaleTimeString(), e.event, e.account, e.path].forEach(function (v) {
          var cell = document.createElement("td"); cell.textContent = v; row.appendChild(cell);
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
