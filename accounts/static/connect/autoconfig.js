// The hosted connect page: as the address is typed, the servers /v1/autoconfig would suggest
// for it (asked through the link's own /connect/autoconfig) fill the server inputs the user
// has not typed in themselves. No framework; the form works without it.
(function () {
  "use strict";
  var form = document.getElementById("connect-form");
  if (!form || !window.fetch) return;
  var url = form.getAttribute("data-autoconfig-url");
  var email = form.querySelector("[data-autoconfig=email]");
  var note = document.getElementById("autoconfig-note");
  var inputs = form.querySelectorAll("[data-autoconfig]:not([data-autoconfig=email])");
  var typed = {};  // inputs the user changed: never overwritten
  var shape = /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/;
  var timer = null, asked = "";

  // A form sent back with an error keeps what the user chose: none of it is replaced.
  var resent = !!document.getElementById("errors");
  inputs.forEach(function (input) {
    if (resent) typed[input.name] = true;
    input.addEventListener("input", function (event) {
      if (event.isTrusted) typed[input.name] = true;
    });
    input.addEventListener("change", function (event) {
      if (event.isTrusted) typed[input.name] = true;
    });
  });

  function value(found, path) {
    var parts = path.split("."), v = found;
    for (var i = 0; i < parts.length; i++) { if (v == null) return null; v = v[parts[i]]; }
    return v;
  }

  function fill(found) {
    form.setAttribute("data-autoconfig-done", found.email);  // for tests
    if (!found.imap) { if (note) { note.textContent = ""; note.hidden = true; } return; }
    inputs.forEach(function (input) {
      var v = value(found, input.getAttribute("data-autoconfig"));
      if (v == null || typed[input.name]) return;
      if (input.type === "checkbox") input.checked = !!v; else input.value = String(v);
    });
    if (note) {
      note.textContent = "Servers filled in for " + found.email.split("@")[1] +
        ": check them before connecting.";
      note.hidden = false;
    }
  }

  function ask() {
    var address = email.value.trim();
    if (!shape.test(address) || address === asked) return;
    asked = address;
    fetch(url + "&email=" + encodeURIComponent(address), { credentials: "same-origin",
      headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) { if (found && email.value.trim() === address) fill(found); })
      .catch(function () { /* no suggestion: the user types the servers */ });
  }

  email.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 400);
  });
  email.addEventListener("change", ask);
})();
