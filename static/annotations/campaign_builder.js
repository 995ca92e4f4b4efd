/* The new-campaign form as a builder: a filter box and select all / none on each checkbox list, a live count
 * of the outputs the selection picks (GET /api/campaigns/selection-count/, debounced), and gold items chosen
 * by searching outputs (GET /api/campaigns/gold-search/). Without this script the form posts the same fields.
 * The gold textarea stays the one source: chosen items are its "output id, category key" lines, so the
 * server's check of that field is the only one. Names and output texts are untrusted: textContent only.
 */
"use strict";
(() => {
  const form = document.getElementById("campaign-builder");
  const configNode = document.getElementById("campaign-builder-config");
  if (!form || !configNode) return;
  const config = JSON.parse(configNode.textContent);
  const $ = (id) => document.getElementById(id);
  const LISTS = ["runs", "models", "groups", "templates"];
  const number = (n) => n.toLocaleString("en-US");

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function checked(name) {
    return Array.from(form.querySelectorAll(`input[type=checkbox][name="${name}"]:checked`), (box) => box.value);
  }

  /* Checkbox lists: the filter hides the items whose label lacks the text; the buttons act on the visible. */
  for (const list of form.querySelectorAll("[data-choice-list]")) {
    const tools = list.querySelector(".choice-tools");
    const filter = list.querySelector("[data-choice-filter]");
    const items = Array.from(list.querySelectorAll("ul.choices li")).filter((li) => li.querySelector("input"));
    const empty = list.querySelector("[data-choice-empty]");
    const summary = list.querySelector("[data-choice-summary]");
    tools.hidden = false;
    const summarise = () => {
      const on = items.filter((li) => li.querySelector("input").checked).length;
      summary.textContent = `(${on} of ${items.length} selected)`;
    };
    filter.addEventListener("input", () => {
      const text = filter.value.trim().toLowerCase();
      let shown = 0;
      for (const li of items) {
        li.hidden = text !== "" && !li.textContent.toLowerCase().includes(text);
        if (!li.hidden) shown += 1;
      }
      empty.hidden = shown > 0 || items.length === 0;
    });
    filter.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault(); // never submit the form from a filter box
    });
    const setVisible = (value) => {
      for (const li of items) {
        if (!li.hidden) li.querySelector("input").checked = value;
      }
      list.dispatchEvent(new Event("change", { bubbles: true }));
    };
    list.querySelector("[data-choice-all]").addEventListener("click", () => setVisible(true));
    list.querySelector("[data-choice-none]").addEventListener("click", () => setVisible(false));
    list.addEventListener("change", summarise);
    summarise();
  }

  /* The live count, per model x group, with the endpoint's warnings. */
  const count = $("selection-count");
  const countStatus = $("selection-count-status");
  const warnings = $("selection-count-warnings");
  const table = $("selection-count-table");
  let countRequest = 0;

  function showCount(answer) {
    const cells = new Map(answer.cells.map((c) => [`${c.model}:${c.group}`, c.n]));
    const plural = (n, word) => `${number(n)} ${word}${n === 1 ? "" : "s"}`;
    countStatus.textContent = `${plural(answer.total, "output")} selected (${plural(answer.models.length, "model")} x ${plural(answer.groups.length, "group")}).`;
    warnings.replaceChildren(...answer.warnings.map((w) => element("li", w.message)));
    const head = element("tr");
    head.append(element("th", "Group"), ...answer.models.map((m) => element("th", m.name)), element("th", "Total"));
    for (const th of head.children) th.scope = "col";
    table.tHead.replaceChildren(head);
    const rows = answer.groups.map((g) => {
      const tr = element("tr");
      const th = element("th", g.name);
      th.scope = "row";
      tr.append(th);
      for (const m of answer.models) {
        const n = cells.get(`${m.id}:${g.id}`) || 0;
        tr.append(element("td", number(n), n === 0 ? "empty" : ""));
      }
      tr.append(element("td", number(g.total)));
      return tr;
    });
    const totals = element("tr");
    const th = element("th", "Total");
    th.scope = "row";
    totals.append(th, ...answer.models.map((m) => element("td", number(m.total))), element("td", number(answer.total)));
    table.tBodies[0].replaceChildren(...rows, totals);
    table.hidden = answer.groups.length === 0;
  }

  async function refreshCount() {
    const query = new URLSearchParams();
    for (const name of LISTS) for (const id of checked(name)) query.append(name, id);
    const mine = ++countRequest;
    warnings.replaceChildren();
    if (!query.toString()) {
      countStatus.textContent = "Choose at least one run, model, group or template.";
      table.hidden = true;
      count.dataset.state = "empty";
      return;
    }
    count.dataset.state = "loading";
    countStatus.textContent = "Counting…";
    try {
      const response = await fetch(`${config.countUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (mine !== countRequest) return; // a newer selection is being counted
      if (!response.ok) {
        countStatus.textContent = answer.detail || `The count failed (${response.status}).`;
        table.hidden = true;
        count.dataset.state = "error";
        return;
      }
      showCount(answer);
      count.dataset.state = "done";
    } catch (error) {
      if (mine !== countRequest) return;
      countStatus.textContent = "The count could not be fetched.";
      count.dataset.state = "error";
    }
  }

  /* Gold items: the textarea's lines, shown as a list with remove buttons; search results add lines. */
  const picker = $("gold-picker");
  const gold = form.querySelector("textarea[name=gold]");
  const scheme = form.querySelector("select[name=scheme]");
  const category = $("gold-category");
  const search = $("gold-search");
  const searchStatus = $("gold-search-status");
  const results = $("gold-results");
  const chosen = $("gold-chosen");
  const texts = new Map(); // output id -> excerpt, for the chosen list
  let searchRequest = 0;

  const LINE = /^\s*(\d+)\s*,\s*(\S(?:.*\S)?)\s*$/;
  function goldLines() {
    return gold.value.split("\n").map((line, index) => {
      const match = LINE.exec(line);
      return match ? { index, id: match[1], key: match[2] } : null;
    }).filter(Boolean);
  }

  function categoryName(key) {
    const found = (config.categories[scheme.value] || []).find((c) => c.key === key);
    return found ? found.name : key;
  }

  function fillCategories() {
    const previous = category.value;
    category.replaceChildren(...(config.categories[scheme.value] || []).map((c) => {
      const option = element("option", c.name);
      option.value = c.key;
      return option;
    }));
    if (Array.from(category.options).some((o) => o.value === previous)) category.value = previous;
    renderChosen();
  }

  function removeLine(index) {
    const lines = gold.value.split("\n");
    lines.splice(index, 1);
    gold.value = lines.join("\n");
    renderChosen();
    markResults();
  }

  function renderChosen() {
    const lines = goldLines();
    chosen.replaceChildren(...lines.map((line, position) => {
      const li = element("li");
      li.append(element("strong", `#${line.id}`), document.createTextNode(` ${categoryName(line.key)} (${line.key})`));
      if (texts.has(line.id)) li.append(element("p", texts.get(line.id), "gold-text"));
      const button = element("button", "Remove");
      button.type = "button";
      button.setAttribute("aria-label", `Remove gold output ${line.id}`);
      button.addEventListener("click", () => {
        removeLine(line.index);
        searchStatus.textContent = `Output ${line.id} removed from the gold items.`;
        const buttons = chosen.querySelectorAll("button");
        (buttons[Math.min(position, buttons.length - 1)] || search).focus();
      });
      li.append(button);
      return li;
    }));
    if (!lines.length) chosen.append(element("li", "None yet.", "muted"));
  }

  function markResults() {
    const ids = new Set(goldLines().map((line) => line.id));
    for (const button of results.querySelectorAll("button[data-output]")) {
      const taken = ids.has(button.dataset.output);
      button.disabled = taken;
      button.textContent = taken ? "Added" : "Add as gold";
    }
  }

  function add(result) {
    if (!category.value) {
      searchStatus.textContent = "The chosen label scheme has no categories.";
      return;
    }
    const id = String(result.id);
    texts.set(id, result.text);
    const kept = gold.value.replace(/\s+$/, "");
    gold.value = `${kept ? `${kept}\n` : ""}${id}, ${category.value}\n`;
    renderChosen();
    markResults();
    searchStatus.textContent = `Output ${id} added as gold: ${categoryName(category.value)}.`;
  }

  function showResults(list) {
    results.replaceChildren(...list.map((r) => {
      const li = element("li");
      li.append(element("strong", `#${r.id}`), document.createTextNode(` ${r.model} · ${r.group} · `), element("em", r.prompt));
      li.append(element("p", r.is_excerpt ? `…${r.text}…` : r.text, "gold-text"));
      const button = element("button", "Add as gold");
      button.type = "button";
      button.dataset.output = String(r.id);
      button.setAttribute("aria-label", `Add output ${r.id} as gold`);
      button.addEventListener("click", () => add(r));
      li.append(button);
      return li;
    }));
    markResults();
  }

  async function runSearch() {
    const runs = checked("runs");
    const mine = ++searchRequest;
    if (!runs.length) {
      results.replaceChildren();
      searchStatus.textContent = "Choose a run above to search its outputs.";
      picker.dataset.state = "empty";
      return;
    }
    const query = new URLSearchParams({ q: search.value.trim() });
    for (const id of runs) query.append("runs", id);
    picker.dataset.state = "loading";
    try {
      const response = await fetch(`${config.searchUrl}?${query}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      if (mine !== searchRequest) return;
      if (!response.ok) {
        searchStatus.textContent = answer.detail || `The search failed (${response.status}).`;
        picker.dataset.state = "error";
        return;
      }
      showResults(answer.results);
      const n = answer.results.length;
      const more = n >= answer.limit ? " (the first ones; narrow the search for others)" : "";
      searchStatus.textContent = n ? `${n} matching output${n === 1 ? "" : "s"}${more}.` : "No output matches.";
      picker.dataset.state = "done";
    } catch (error) {
      if (mine !== searchRequest) return;
      searchStatus.textContent = "The search could not be fetched.";
      picker.dataset.state = "error";
    }
  }

  const countSoon = debounce(refreshCount, 300);
  const searchSoon = debounce(runSearch, 300);
  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if (LISTS.includes(name) || event.target.matches("[data-choice-list]")) countSoon();
    if ((name === "runs" || event.target.matches("[data-choice-list=runs]")) && search.value.trim()) searchSoon();
  });
  search.addEventListener("input", searchSoon);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // search now instead of submitting the form
      runSearch();
    }
  });
  gold.addEventListener("input", () => {
    renderChosen();
    markResults();
  });
  scheme.addEventListener("change", fillCategories);

  count.hidden = false;
  picker.hidden = false;
  fillCategories();
  refreshCount();
})();
