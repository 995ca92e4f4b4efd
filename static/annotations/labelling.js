/* The labelling page: keyboard-first, no framework. It talks to the same JSON API as everyone else:
 *   POST next/ {after}        lease the next item (or the one I hold); `after` prefetches the following one
 *   POST labels/              submit; GET labels/ my labels; GET/PATCH labels/{item}/ go back and change
 *   POST skip/                give an item back with a reason;  GET progress/
 * Model output is untrusted: it is only ever put into the page with textContent, never as HTML.
 * A campaign that shows suggestions has a #suggestion hint; an item handed out to label may carry a scorer's
 * `suggestion`, shown there as text. It never chooses a category: the annotator still picks one.
 * window.labellingTimings collects keypress-to-next-item times (ms) for the browser benchmark.
 */
"use strict";
(() => {
  const root = document.getElementById("labelling");
  if (!root) return;
  const config = JSON.parse(document.getElementById("labelling-config").textContent);
  const csrf = document.getElementById("csrf").value;
  const $ = (id) => document.getElementById(id);
  const IDLE_MS = 20000;
  const PROGRESS_EVERY = 10;
  const shortcuts = new Map(config.categories.map((c) => [c.shortcut, c.key]));
  const radios = () => Array.from(document.querySelectorAll('input[name="category"]'));

  const state = {
    current: null, // the item I am labelling
    prefetched: null, // the following item, already leased
    prefetching: null, // promise of the prefetch in flight
    pending: null, // promise of the last submit/skip and the prefetch after it
    editing: null, // a previous item being changed
    editIndex: -1,
    draft: null, // the current item's unsaved choice while I look back
    back: [], // item ids I labelled, oldest first
    mine: { labelled: 0, skipped: 0 },
    campaign: null,
    sinceProgress: 0,
  };
  window.labellingTimings = [];

  // Active time: counted while the page is visible and I touched it in the last IDLE_MS.
  const activity = { ms: 0, lastTick: performance.now(), lastInput: performance.now() };
  function tick() {
    const now = performance.now();
    if (document.visibilityState === "visible" && now - activity.lastInput < IDLE_MS) {
      activity.ms += now - activity.lastTick;
    }
    activity.lastTick = now;
  }
  function takeActiveSeconds() {
    tick();
    const seconds = Math.round(activity.ms / 100) / 10;
    activity.ms = 0;
    return seconds;
  }
  for (const name of ["keydown", "mousemove", "mousedown", "wheel", "touchstart", "scroll"]) {
    window.addEventListener(name, () => { tick(); activity.lastInput = performance.now(); }, { passive: true });
  }
  document.addEventListener("visibilitychange", tick);
  setInterval(() => {
    tick();
    $("active-time").textContent = `Active ${Math.round(activity.ms / 1000)} s`;
  }, 1000);

  let inflight = 0; // requests under way, exposed as data-inflight (tests wait for 0)
  async function api(method, path, body) {
    root.dataset.inflight = String(++inflight);
    try {
      const response = await fetch(config.api + path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.detail || `The server answered ${response.status}.`);
      return data;
    } finally {
      root.dataset.inflight = String(--inflight);
    }
  }

  function status(message, isError = false) {
    const el = $("status");
    el.textContent = message;
    el.classList.toggle("error", isError);
  }

  function showProgress() {
    const c = state.campaign;
    let text = `You: ${state.mine.labelled} labelled, ${state.mine.skipped} skipped`;
    if (c) {
      const share = c.labels_needed ? Math.round((100 * c.labels) / c.labels_needed) : 0;
      text += ` · Campaign: ${c.labels} of ${c.labels_needed} labels (${share}%), ${c.finished_items} of ${c.items} outputs done`;
      $("progress-bar").max = c.labels_needed || 1;
      $("progress-bar").value = c.labels;
    }
    $("progress").textContent = text;
  }

  async function loadProgress() {
    try {
      const data = await api("GET", "progress/");
      // Counts only grow; a reply that left the server before my latest label must not undo it.
      state.mine = {
        labelled: Math.max(state.mine.labelled, data.mine.labelled),
        skipped: Math.max(state.mine.skipped, data.mine.skipped),
      };
      const before = state.campaign;
      state.campaign = before ? { ...data.campaign, labels: Math.max(before.labels, data.campaign.labels) } : data.campaign;
      state.sinceProgress = 0;
      showProgress();
    } catch (error) {
      status(error.message, true);
    }
  }

  function selected() {
    const checked = radios().find((r) => r.checked);
    return checked ? checked.value : null;
  }

  function choose(key) {
    for (const radio of radios()) radio.checked = radio.value === key;
  }

  // The scorer's suggestion for the item being labelled (never when changing an earlier label).
  function showSuggestion(payload, mode) {
    const hint = $("suggestion");
    if (!hint) return; // the campaign keeps annotators blind to scores
    const suggestion = mode === "label" && payload ? payload.suggestion : null;
    hint.hidden = !suggestion;
    if (!suggestion) return;
    const p = typeof suggestion.probability === "number" ? ` (p ${suggestion.probability.toFixed(2)})` : "";
    $("suggestion-text").textContent = `Scorer suggests: ${suggestion.category_name}${p}`;
  }

  function render(payload, mode) {
    root.dataset.mode = mode;
    showSuggestion(payload, mode);
    root.dataset.item = payload ? String(payload.item) : "";
    $("edit-banner").hidden = mode !== "edit";
    $("cancel-edit").hidden = mode !== "edit";
    $("skip").disabled = mode !== "label";
    $("submit").disabled = mode === "empty";
    $("submit").firstChild.textContent = mode === "edit" ? "Save change " : "Submit ";
    const empty = mode === "empty";
    for (const id of ["prompt", "output"]) $(id).hidden = empty;
    $("empty").hidden = !empty;
    if (empty) {
      $("empty").textContent = "Nothing left for you to label in this campaign right now. Thank you!";
      $("item-ref").textContent = "";
      $("item-model").textContent = "";
      return;
    }
    $("prompt").textContent = payload.prompt;
    $("output").textContent = payload.output;
    $("item-ref").textContent = mode === "edit" ? `Your earlier item ${payload.item}` : `Item ${payload.item}`;
    $("item-model").textContent = payload.model ? `Model: ${payload.model}` : "";
    choose(payload.category || null);
    $("note").value = payload.note || "";
  }

  function showCurrent() {
    if (state.current) render(state.current, "label");
    else render(null, "empty");
    // Keys choose categories again after a note or a skip reason: focus leaves the text fields.
    if (document.activeElement && ["note", "skip-reason"].includes(document.activeElement.id)) {
      $("output").focus();
    }
  }

  function prefetch() {
    if (!state.current) return null;
    const after = state.current.item;
    delete root.dataset.prefetched;
    state.prefetching = api("POST", "next/", { after })
      .then((data) => {
        if (state.current && state.current.item === after) {
          state.prefetched = data.item;
          root.dataset.prefetched = "1";
        }
        return data.item;
      })
      .catch((error) => {
        status(error.message, true);
        return null;
      })
      .finally(() => {
        state.prefetching = null;
      });
    return state.prefetching;
  }

  function markShown(keyTime) {
    requestAnimationFrame(() => {
      window.labellingTimings.push(performance.now() - keyTime);
    });
  }

  // Show the next item at once (it was prefetched), then tell the server what happened to the old one.
  async function advance(keyTime, send, message) {
    if (state.pending) await state.pending;
    const old = state.current;
    if (!old) return;
    if (!state.prefetched && state.prefetching) await state.prefetching;
    const following = state.prefetched;
    state.prefetched = null;
    delete root.dataset.prefetched; // it is shown now; the flag returns when the one after it is leased
    state.current = following;
    activity.ms = 0;
    showCurrent();
    if (following) markShown(keyTime);
    state.pending = (async () => {
      try {
        await send(old);
        status(message(old));
      } catch (error) {
        status(`Item ${old.item}: ${error.message}`, true);
      }
      if (!state.current) {
        const data = await api("POST", "next/", {}).catch(() => ({ item: null }));
        state.current = data.item;
        showCurrent();
      }
      await prefetch();
    })().finally(() => {
      state.pending = null;
    });
    return state.pending;
  }

  function submit(keyTime) {
    const category = selected();
    if (!category) {
      status(`Choose a category first (keys ${[...shortcuts.keys()].join(", ")}).`, true);
      return;
    }
    if (state.editing) {
      saveEdit(category);
      return;
    }
    const note = $("note").value;
    const activeSeconds = takeActiveSeconds();
    advance(
      keyTime,
      async (old) => {
        await api("POST", "labels/", { item: old.item, category, note, active_seconds: activeSeconds });
        state.back.push(old.item);
        state.mine.labelled += 1;
        if (state.campaign) state.campaign.labels += 1;
        state.sinceProgress += 1;
        if (state.sinceProgress >= PROGRESS_EVERY) loadProgress();
        else showProgress();
      },
      (old) => `Item ${old.item} labelled.`,
    );
  }

  function openSkip() {
    if (!state.current || state.editing) return;
    $("skip-form").hidden = false;
    $("skip-reason").value = "";
    $("skip-reason").focus();
  }

  function closeSkip() {
    $("skip-form").hidden = true;
    $("output").focus();
  }

  function skip(keyTime) {
    const reason = $("skip-reason").value.trim();
    if (!reason) {
      status("Say why you skip this output.", true);
      return;
    }
    closeSkip();
    takeActiveSeconds();
    advance(
      keyTime,
      async (old) => {
        await api("POST", "skip/", { item: old.item, reason });
        state.mine.skipped += 1;
        showProgress();
      },
      (old) => `Item ${old.item} skipped.`,
    );
  }

  async function goBack() {
    const index = state.editing ? state.editIndex - 1 : state.back.length - 1;
    if (index < 0) {
      status("No earlier item to go back to.", true);
      return;
    }
    try {
      const payload = await api("GET", `labels/${state.back[index]}/`);
      if (!state.editing) {
        state.draft = { category: selected(), note: $("note").value, activeMs: activity.ms };
      }
      activity.ms = 0;
      state.editing = payload;
      state.editIndex = index;
      render(payload, "edit");
      status(`Showing your label on item ${payload.item}.`);
    } catch (error) {
      status(error.message, true);
    }
  }

  function leaveEdit() {
    state.editing = null;
    state.editIndex = -1;
    showCurrent();
    if (state.draft && state.current) {
      choose(state.draft.category);
      $("note").value = state.draft.note;
      activity.ms = state.draft.activeMs;
    }
    state.draft = null;
  }

  async function saveEdit(category) {
    const editing = state.editing;
    try {
      await api("PATCH", `labels/${editing.item}/`, {
        category,
        note: $("note").value,
        active_seconds: takeActiveSeconds(),
      });
      leaveEdit();
      status(`Item ${editing.item} changed to ${category}.`);
    } catch (error) {
      status(error.message, true);
    }
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const keyTime = performance.now();
    if (target.id === "skip-reason") {
      if (event.key === "Enter") { event.preventDefault(); skip(keyTime); }
      else if (event.key === "Escape") { event.preventDefault(); closeSkip(); }
      return;
    }
    if (target.id === "note") {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); submit(keyTime); }
      else if (event.key === "Escape") { event.preventDefault(); $("output").focus(); }
      return;
    }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) && target.type !== "radio") return;
    if ((target.tagName === "BUTTON" || target.tagName === "A") && (event.key === "Enter" || event.key === " ")) {
      return; // the focused control's own action
    }
    const key = event.key;
    if (shortcuts.has(key)) {
      event.preventDefault();
      choose(shortcuts.get(key));
    } else if (key === "Enter") {
      event.preventDefault();
      submit(keyTime);
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      openSkip();
    } else if (key === "z" || key === "Z" || key === "Backspace") {
      event.preventDefault();
      goBack();
    } else if (key === "n" || key === "N") {
      event.preventDefault();
      $("note").focus();
    } else if (key === "Escape") {
      if (state.editing) leaveEdit();
      else if (!$("skip-form").hidden) closeSkip();
    }
  }

  document.addEventListener("keydown", onKey);
  $("submit").addEventListener("click", () => submit(performance.now()));
  $("skip").addEventListener("click", openSkip);
  $("back").addEventListener("click", goBack);
  $("cancel-edit").addEventListener("click", leaveEdit);
  $("skip-form").addEventListener("submit", (event) => { event.preventDefault(); skip(performance.now()); });

  async function start() {
    loadProgress();
    try {
      const mine = await api("GET", "labels/");
      state.back = mine.results.map((row) => row.item).reverse();
      const data = await api("POST", "next/", {});
      state.current = data.item;
      showCurrent();
      $("output").focus();
      root.dataset.ready = "1";
      await prefetch();
    } catch (error) {
      status(error.message, true);
    }
  }
  start();
})();
