// Polls the score run's progress JSON every second and updates the page without reloading; stops once
// the run is finished. Prompts and errors are inserted as text (textContent), never as HTML.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box) { return; }
  var url = box.getAttribute("data-url");
  var bar = box.querySelector("[role=progressbar]");
  var FIELDS = ["status_display", "done", "unparseable", "failed", "pending", "running", "cancelled", "total",
    "outputs_per_second"];

  function set(field, value) {
    var el = box.querySelector('[data-field="' + field + '"]');
    if (el) { el.textContent = value; }
  }

  function cell(text, pre) {
    var td = document.createElement("td");
    if (pre) {
      var p = document.createElement("pre");
      p.className = "plain";
      p.textContent = text;
      td.appendChild(p);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function showFailures(failures) {
    var body = document.getElementById("run-failures");
    if (!body) { return; }
    body.replaceChildren();
    if (!failures.length) {
      var row = document.createElement("tr");
      var td = cell("No failures.");
      td.colSpan = 4;
      row.appendChild(td);
      body.appendChild(row);
      return;
    }
    failures.forEach(function (f) {
      var row = document.createElement("tr");
      row.appendChild(cell(f.model));
      row.appendChild(cell(f.prompt));
      row.appendChild(cell(String(f.attempts)));
      row.appendChild(cell(f.error, true));
      body.appendChild(row);
    });
  }

  function show(p) {
    FIELDS.forEach(function (f) { set(f, String(p[f])); });
    set("time_left", p.seconds_left === null ? "unknown" : p.seconds_left + " s");
    bar.setAttribute("aria-valuemax", p.total);
    bar.setAttribute("aria-valuenow", p.done + p.failed);
    bar.querySelector(".bar-done").style.flexGrow = p.done;
    bar.querySelector(".bar-failed").style.flexGrow = p.failed;
    bar.querySelector(".bar-rest").style.flexGrow = p.pending + p.running + p.cancelled;
    showFailures(p.failures);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (p) {
        show(p);
        box.setAttribute("data-polls", String(Number(box.getAttribute("data-polls") || 0) + 1));
        if (!p.is_finished) { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
