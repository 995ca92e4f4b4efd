/* The "Plan the human labels" box of the campaign form: GET /api/stats/plan/ for the chosen pilot campaign,
 * scorer and half-width, then the summary line and one row per model x group. Campaign, scorer, model and
 * group names are untrusted: they reach the page only through textContent. The box sits outside the form,
 * so it never changes what the form submits.
 */
"use strict";
(() => {
  const root = document.getElementById("label-planner");
  const button = document.getElementById("planner-run");
  if (!root || !button) return;
  const $ = (id) => document.getElementById(id);
  const pilot = $("planner-pilot");
  const scorer = $("planner-scorer");
  const status = $("planner-status");
  const summary = $("planner-summary");
  const table = $("planner-table");
  const body = table.querySelector("tbody");

  // Only scorers of the pilot's label scheme can be compared with its human labels.
  function matchScorers() {
    const scheme = pilot.selectedOptions[0] ? pilot.selectedOptions[0].dataset.scheme : "";
    let first = null;
    for (const option of scorer.options) {
      const fits = option.dataset.scheme === scheme;
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && first === null) first = option;
    }
    if (!scorer.selectedOptions[0] || scorer.selectedOptions[0].disabled) {
      scorer.value = first ? first.value : "";
    }
    button.disabled = first === null;
    status.textContent = first === null ? "No scorer assigns this pilot's categories." : "";
  }

  function needed(plan) {
    if (plan.n === null) return `undefined (${plan.reason})`;
    const n = plan.n.toLocaleString("en-US");
    // the estimates show no interval below this many labels in the cell (planner.shown_from)
    return plan.raised_to_minimum ? `${n} (the fewest for an interval here)` : n;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function show(plan) {
    summary.textContent = plan.summary;
    body.replaceChildren();
    for (const r of plan.rows) {
      const tr = document.createElement("tr");
      cell(tr, r.model);
      cell(tr, r.group);
      cell(tr, String(r.pilot_n));
      cell(tr, r.population.toLocaleString("en-US"));
      cell(tr, needed(r.human_only));
      cell(tr, needed(r.ppi));
      cell(tr, needed(r.active));
      body.appendChild(tr);
    }
    table.hidden = plan.rows.length === 0;
  }

  async function plan() {
    const points = Number($("planner-half-width").value);
    summary.textContent = "";
    table.hidden = true;
    if (!(points > 0 && points <= 50)) {
      status.textContent = "The half-width must be more than 0 and at most 50 points.";
      return;
    }
    const query = new URLSearchParams({ pilot: pilot.value, scorer: scorer.value, half_width: String(points / 100) });
    status.textContent = "Planning…";
    root.dataset.state = "loading";
    try {
      const response = await fetch(`${root.dataset.url}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (!response.ok) {
        status.textContent = answer.detail || `The plan failed (${response.status}).`;
        root.dataset.state = "error";
        return;
      }
      show(answer);
      status.textContent = "";
      root.dataset.state = "done";
    } catch (error) {
      status.textContent = "The plan could not be fetched.";
      root.dataset.state = "error";
    }
  }

  pilot.addEventListener("change", matchScorers);
  button.addEventListener("click", plan);
  matchScorers();
})();
