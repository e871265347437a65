/* The labeling workspace: one pair at a time, keyboard first, fetched without page reloads.
 *
 * Safety of submissions: each assignment gets ONE idempotency key, generated when the pair
 * is first shown and kept in sessionStorage until the server confirms. Retries after a lost
 * connection, a double Enter or a double click all resend that key, and the server stores a
 * key once, so a judgment is never lost and never doubled.
 *
 * Correction mode (data-mode="correct", /judgments/<id>/correct/): the same form, pre-filled
 * from a submitted judgment. A NEW key, kept per corrected judgment, makes the server store the
 * next revision; retries resend that key, so one correction is one revision. No lease, no skip.
 *
 * Drafts: while a pair is on screen, the answer so far is kept in sessionStorage under its
 * assignment id ("clinpref:draft:<id>"), so a reload (which gets the same lease back) restores
 * it; it is dropped on submit or skip. When the lease runs out before the answer is stored
 * (the timer, or a 409 lease_expired), the draft becomes the batch's "orphan"
 * ("clinpref:orphan:<batch>"): the page asks the server for the same pair again and, if it comes
 * back on a new lease, puts the answer back to resubmit; otherwise it offers the answer to copy.
 *
 * Single-key shortcuts can be turned off (WCAG 2.1.4); the choice is kept in localStorage. */
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const ws = $("#workspace");
  const form = $("#judgment-form");
  const csrf = $("[name=csrfmiddlewaretoken]", ws).value;
  const rubric = JSON.parse($("#rubric-data").textContent || "[]");
  const policy = ws.dataset.rationalePolicy;
  const correcting = ws.dataset.mode === "correct";
  const correction = correcting ? JSON.parse($("#correction-data").textContent) : null; // {assignment, prefill}
  const SEVERITIES = $$("#harm-severity option").map((o) => o.value);
  // The vocabulary comes from the server (annotation.rules.PREFERENCES), never spelled here.
  const PREFERENCES = JSON.parse($("#preference-data").textContent || "[]");
  const STRONG_OR_TIE = new Set(PREFERENCES.filter((p) => p.strong_or_tie).map((p) => p.display));
  const FLAG_KEYS = { h: "hallucination", u: "unsafe_advice", o: "outdated_guidance" };
  const PREFERENCE_WORDS = Object.fromEntries($$("input[name=preference]").map((i) => [i.value, i.closest("label").querySelector(".pref-words").textContent]));
  const ORPHAN = "clinpref:orphan:" + (ws.dataset.nextUrl || "").replace(/\D+/g, "");
  const SHORTCUTS = "clinpref:shortcuts";

  let current = null;     // the assignment payload on screen
  let spans = [];         // [{response: 1|2, start, end, type, text}]
  let pendingSpan = null; // a selection waiting for its error type
  let submitting = false;
  let clockOffset = 0;    // server time - client time, from the Date header
  let leaseTimer = null;
  let activeMs = 0, activeSince = null;
  let restoring = false;  // true while a pair is being put on the form: no draft saves
  let cursor = null;      // the sentence cursor: {slot, index}

  // ------------------------------------------------------------------ helpers
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function keyName(assignmentId) {
    return correcting ? "clinpref:fix:" + ws.dataset.judgmentId : "clinpref:key:" + assignmentId;
  }
  function keyFor(assignmentId) {
    const name = keyName(assignmentId);
    let key = sessionStorage.getItem(name);
    if (!key) { key = newKey(); sessionStorage.setItem(name, key); }
    return key;
  }
  function show(el, on) { el.hidden = !on; }
  function banner(kind, text) {
    const el = $("#banner");
    if (!text) { el.hidden = true; return; }
    el.className = "alert alert-" + kind;
    el.textContent = text;
    el.hidden = false;
  }
  function formError(text) {
    const el = $("#form-error");
    el.textContent = text || "";
    el.hidden = !text;
    if (!text) $$("[aria-invalid=true]", form).forEach((c) => c.removeAttribute("aria-invalid"));
  }
  function say(text) { const el = $("#ws-status"); if (el) { el.textContent = ""; setTimeout(() => { el.textContent = text; }, 30); } }
  function inView(el) {
    const r = el.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  }
  /** A rejected submit is seen: the message is announced (role=alert), the control that needs
   * attention is focused and scrolled to, and the message is scrolled into view too. */
  function showProblem(text, control) {
    formError(text);
    const message = $("#form-error");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.focus({ preventScroll: true });
      const target = control.matches("input[type=radio]") ? control.closest("fieldset") : control;
      if (!inView(target)) target.scrollIntoView({ block: "center" });
    }
    if (!inView(message)) message.scrollIntoView({ block: "nearest" });
  }

  // Time on task counts only while the page is visible, so a coffee break is not "time spent".
  function clockStart() { activeMs = 0; activeSince = document.hidden ? null : performance.now(); }
  function elapsedMs() { return Math.round(activeMs + (activeSince === null ? 0 : performance.now() - activeSince)); }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden && activeSince !== null) { activeMs += performance.now() - activeSince; activeSince = null; }
    else if (!document.hidden && activeSince === null && current) { activeSince = performance.now(); }
  });

  // ------------------------------------------------------------------ progress and lease
  function setBar(el, textEl, percent, text) {
    el.querySelector("span").style.width = Math.max(0, Math.min(100, percent)) + "%";
    el.setAttribute("aria-valuenow", String(Math.round(percent)));
    textEl.textContent = text;
  }
  function updateProgress(p) {
    if (!p) return;
    if (p.batch) setBar($("#batch-progress"), $("#batch-progress-text"), p.batch.percent,
      `${p.batch.judgments_done} of ${p.batch.judgments_needed} judgments`);
    const total = p.mine_done + p.left_for_me;
    const calibration = p.mine_calibration ? ` (+${p.mine_calibration} calibration)` : "";
    setBar($("#my-progress"), $("#my-progress-text"), total ? (100 * p.mine_done) / total : 100,
      `${p.mine_done} done · ${p.left_for_me} left${calibration}`);
  }
  function startLease(expiresAt) {
    clearInterval(leaseTimer);
    const lease = $("#lease");
    const expires = new Date(expiresAt).getTime();
    let warned = false;
    const tick = () => {
      const left = Math.round((expires - (Date.now() + clockOffset)) / 1000);
      if (left <= 0) {
        clearInterval(leaseTimer);
        lease.textContent = "Your hold on this pair ran out";
        lease.className = "lease lease-expired";
        if (!submitting) leaseLost("Your hold on that pair ran out before you submitted, so nothing was stored and the pair went back to the pool.");
        return;
      }
      if (left >= 120) {
        const minutes = Math.round(left / 60);  // whole minutes; the Date header is only second-precise
        lease.textContent = `This pair is held for you for ${minutes} more minutes`;
      } else {
        const m = Math.floor(left / 60), s = String(left % 60).padStart(2, "0");
        lease.textContent = `This pair is held for you for ${m}:${s} more`;
        if (!warned) { warned = true; say("Less than two minutes left on your hold of this pair."); }
      }
      lease.className = "lease" + (left < 120 ? " lease-warning" : "");
    };
    tick();
    leaseTimer = setInterval(tick, 1000);
  }

  // ------------------------------------------------------------------ loading and rendering
  async function loadNext(notice, preferPair) {
    current = null;
    clearInterval(leaseTimer);
    show(form, false); show($("#state-done"), false); show($("#state-loading"), true);
    const url = ws.dataset.nextUrl + (preferPair ? "?pair=" + encodeURIComponent(preferPair) : "");
    let response;
    for (let attempt = 0; ; attempt++) {
      try {
        response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
        break;
      } catch (err) {
        banner("warning", "Connection lost. Trying again…");
        await sleep(Math.min(15000, 1000 * 2 ** attempt));
      }
    }
    const serverDate = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(serverDate)) clockOffset = serverDate - Date.now();
    const data = await response.json().catch(() => ({}));
    show($("#state-loading"), false);
    if (!response.ok) { banner("error", data.detail || `The server answered ${response.status}.`); return; }
    updateProgress(data.progress);
    if (!data.assignment) {
      banner(notice ? "warning" : "", notice || "");
      show($("#state-done"), true);
      offerOrphan(null);
      return;
    }
    render(data.assignment);
    banner(notice ? "warning" : "", notice || "");
    offerOrphan(data.assignment);
  }

  function render(a) {
    restoring = true;
    current = a;
    form.dataset.assignmentId = String(a.assignment_id);
    spans = [];
    pendingSpan = null;
    cursor = null;
    submitting = false;
    form.reset();
    formError("");
    $("#submit").disabled = false;
    $("#prompt").innerHTML = a.prompt_html;
    for (const r of a.responses) {
      ClinSpans.render($("#response-" + r.slot), r.html, r.text, []);
    }
    renderSpanLists();
    renderCriteria();
    updateRationaleRequirement();
    show($("#span-picker"), false);
    show(form, true);
    keyFor(a.assignment_id);
    if (!correcting) startLease(a.lease_expires_at);
    clockStart();
    window.scrollTo({ top: 0 });
    form.focus({ preventScroll: true });
    restoring = false;
    if (!correcting) {
      const draft = readJson(draftName(a.assignment_id));
      if (draft && draft.state) {
        applyState(draft.state);
        banner("info", "Your unsent answer to this pair was restored.");
      }
    }
  }

  // ------------------------------------------------------------------ drafts and lost leases
  function readJson(name) { try { return JSON.parse(sessionStorage.getItem(name) || "null"); } catch (err) { return null; } }
  function draftName(assignmentId) { return "clinpref:draft:" + assignmentId; }
  function formState() {
    return { ...collect(), error_spans: spans.map((x) => ({ ...x })), criteria_open: $("#criteria-box").open };
  }
  function applyState(state) {
    restoring = true;
    prefill(state);
    if (state.criteria_open) $("#criteria-box").open = true;
    restoring = false;
    saveDraft();
  }
  function saveDraft() {
    if (restoring || correcting || !current) return;
    sessionStorage.setItem(draftName(current.assignment_id), JSON.stringify({ pair_id: current.pair_id, state: formState() }));
  }
  function dropDraft(assignmentId) { sessionStorage.removeItem(draftName(assignmentId)); }
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);

  function answerText(state) {
    const lines = [];
    if (state.preference) lines.push("Preference: " + PREFERENCE_WORDS[state.preference]);
    for (const slot of ["1", "2"]) {
      const flags = (state.flags || {})[slot] || [];
      if (flags.length) lines.push(`Flags on Response ${slot}: ` + flags.map((f) => f.replace(/_/g, " ")).join(", "));
      if ((state.unsafe || {})[slot]) lines.push(`Response ${slot} vetoed as unsafe`);
    }
    if (state.both_unacceptable) lines.push("Both responses unacceptable");
    if (state.harm_severity && state.harm_severity !== "none") lines.push("Harm severity: " + state.harm_severity);
    for (const sp of state.error_spans || []) lines.push(`Error (${sp.type.replace(/_/g, " ")}) in Response ${sp.response}: “${sp.text}”`);
    if (state.rationale) lines.push("Rationale: " + state.rationale);
    return lines.join("\n");
  }
  /** The lease is gone and nothing was stored: keep the answer as the batch's orphan and ask for the same pair again. */
  function leaseLost(notice) {
    const id = current && current.assignment_id;
    if (current && !correcting) {
      sessionStorage.setItem(ORPHAN, JSON.stringify({ pair_id: current.pair_id, first_text: current.responses[0].text, state: formState() }));
      dropDraft(id);
      sessionStorage.removeItem(keyName(id));
    }
    loadNext(notice, current && current.pair_id);
  }
  /** After a pair loads (or none does): put a lost answer back if its pair came back, else offer it to copy. */
  function offerOrphan(a) {
    const box = $("#recovered");
    const orphan = readJson(ORPHAN);
    if (!box || !orphan) { if (box) show(box, false); return; }
    $("#recovered-answer").value = answerText(orphan.state);
    // Put it back only on the same pair shown in the same order (the server keeps the order when a
    // physician takes a pair back); anything else is offered to copy, never resubmitted blindly.
    if (a && a.pair_id === orphan.pair_id && a.responses[0].text === orphan.first_text) {
      applyState(orphan.state);
      sessionStorage.removeItem(ORPHAN);
      $("#recovered-h").textContent = "Your answer is back on the form";
      $("#recovered-text").textContent = "The same pair is held for you again, on a new lease. Your answer was put back: check it and resubmit (Enter), or change it first.";
      show($("#recovered-resubmit"), true);
    } else {
      $("#recovered-h").textContent = "Your earlier answer was not stored";
      $("#recovered-text").textContent = "That pair could not be given back to you (another physician holds it, or it is complete). Copy your answer if you want to keep it.";
      show($("#recovered-resubmit"), false);
    }
    show(box, true);
  }
  if ($("#recovered")) {
    $("#recovered-resubmit").addEventListener("click", () => { show($("#recovered"), false); submit(); });
    $("#recovered-dismiss").addEventListener("click", () => { sessionStorage.removeItem(ORPHAN); show($("#recovered"), false); form.focus({ preventScroll: true }); });
    $("#recovered-copy").addEventListener("click", async () => {
      const text = $("#recovered-answer").value;
      try { await navigator.clipboard.writeText(text); say("Your answer was copied."); }
      catch (err) { $("#recovered-answer").select(); document.execCommand("copy"); say("Your answer is selected; copy it with Ctrl+C."); }
    });
  }

  function renderCriteria() {
    const body = $("#criteria tbody");
    body.innerHTML = "";
    const values = $$("input[name=preference]").map((i) => i.value);
    for (const c of rubric) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = c.label;
      if (c.help) th.title = c.help;
      tr.appendChild(th);
      for (const v of values) {
        const td = document.createElement("td");
        td.className = "c";
        const input = document.createElement("input");
        input.type = "radio";
        input.name = "criterion:" + c.key;
        input.value = v;
        input.setAttribute("aria-label", `${c.label}: ${PREFERENCE_WORDS[v]}`);
        td.appendChild(input);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  /** Correction mode: put a submitted judgment (in this rater's display terms) back on the form. */
  function prefill(p) {
    const pick = (name, value) => { const el = $$(`input[name="${name}"]`).find((i) => i.value === value); if (el) el.checked = true; };
    pick("preference", p.preference);
    for (const [key, value] of Object.entries(p.criteria || {})) pick("criterion:" + key, value);
    if (Object.keys(p.criteria || {}).length) $("#criteria-box").open = true;
    for (const slot of ["1", "2"]) {
      for (const flag of (p.flags || {})[slot] || []) pick("flag" + slot, flag);
      $(`input[name=unsafe${slot}]`).checked = Boolean((p.unsafe || {})[slot]);
    }
    $("#both-unacceptable").checked = Boolean(p.both_unacceptable);
    $("#harm-severity").value = p.harm_severity || "none";
    $("#rationale").value = p.rationale || "";
    spans = (p.error_spans || []).map((x) => ({ ...x }));
    renderSpanLists();
    updateRationaleRequirement();
  }

  function renderSpanLists() {
    for (const slot of [1, 2]) {
      const r = current.responses.find((x) => x.slot === slot);
      const mine = spans.filter((s) => s.response === slot);
      ClinSpans.render($("#response-" + slot), r.html, r.text, mine);
      const list = $("#spans-" + slot);
      list.innerHTML = "";
      spans.forEach((s, index) => {
        if (s.response !== slot) return;
        const li = document.createElement("li");
        li.innerHTML = `<span class="tag err-${s.type}"></span> <q></q> <button type="button" class="link-btn">Remove</button>`;
        li.querySelector(".tag").textContent = s.type.replace(/_/g, " ");
        li.querySelector("q").textContent = s.text.length > 80 ? s.text.slice(0, 77) + "…" : s.text;
        li.querySelector("button").setAttribute("aria-label", `Remove ${s.type.replace(/_/g, " ")} span “${s.text.slice(0, 30)}”`);
        li.querySelector("button").addEventListener("click", () => { spans.splice(index, 1); renderSpanLists(); });
        list.appendChild(li);
      });
    }
    saveDraft();
  }

  // ------------------------------------------------------------------ error spans
  function captureSelection() {
    if (!current) return null;
    for (const r of current.responses) {
      const found = ClinSpans.selectionToRaw($("#response-" + r.slot), r.text);
      if (found) return { response: r.slot, ...found };
    }
    return null;
  }
  // The sentence cursor: a keyboard way to pick a span. It selects one sentence of a response
  // (a real text selection, so `t` and the picker work as for a mouse selection).
  function sentencesOf(raw) {
    const out = [];
    // A sentence ends at . ! ? followed by whitespace, or at a line break ("2.5 mg" stays whole).
    const re = /(?:[^.!?\n]|[.!?]+(?=\S))+[.!?]*/g;
    let m;
    while ((m = re.exec(raw))) {
      let start = m.index, end = m.index + m[0].length;
      while (start < end && /[\s*#>_-]/.test(raw[start])) start++;
      while (end > start && /[\s*_]/.test(raw[end - 1])) end--;
      if (end - start >= 2) out.push({ start, end });
    }
    return out;
  }
  function moveSentence(step, slot) {
    if (!current) return;
    const order = [];
    for (const r of current.responses) sentencesOf(r.text).forEach((sentence, index) => order.push({ slot: r.slot, index, sentence }));
    if (!order.length) return;
    let at = cursor ? order.findIndex((o) => o.slot === cursor.slot && o.index === cursor.index) : -1;
    if (slot && (!cursor || cursor.slot !== slot)) {
      at = order.findIndex((o) => o.slot === slot) - (step > 0 ? 1 : 0);
      if (step < 0) at = order.map((o) => o.slot).lastIndexOf(slot) + 1;
    }
    at = at === -1 ? (step > 0 ? 0 : order.length - 1) : Math.max(0, Math.min(order.length - 1, at + step));
    const target = order[at];
    cursor = { slot: target.slot, index: target.index };
    selectSentence();
    const r = current.responses.find((x) => x.slot === target.slot);
    const n = order.filter((o) => o.slot === target.slot).length;
    say(`Response ${target.slot}, sentence ${target.index + 1} of ${n}: ${r.text.slice(target.sentence.start, target.sentence.end)}. Press t to tag it.`);
  }
  function selectSentence() {
    if (!cursor || !current) return false;
    const r = current.responses.find((x) => x.slot === cursor.slot);
    const sentence = sentencesOf(r.text)[cursor.index];
    const range = sentence && ClinSpans.rawToRange($("#response-" + cursor.slot), r.text, sentence.start, sentence.end);
    if (!range) return false;
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    const box = range.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight - 160) {
      window.scrollBy({ top: box.top - window.innerHeight / 3 });
    }
    return true;
  }
  function tagSentence(slot) {
    if (!captureSelection() && slot && (!cursor || cursor.slot !== slot)) moveSentence(1, slot);
    else if (!captureSelection()) selectSentence();
    if (!openSpanPicker()) { banner("info", "Move the sentence cursor (n / p, or the sentence buttons) or select some text inside a response first, then tag it."); return false; }
    return true;
  }
  $$(".sentence-tools button").forEach((b) => b.addEventListener("click", () => {
    const slot = Number(b.dataset.slot);
    if (b.dataset.sentence === "tag") {
      if (tagSentence(slot)) $("#span-picker button").focus();
    } else moveSentence(b.dataset.sentence === "next" ? 1 : -1, slot);
  }));

  function openSpanPicker() {
    pendingSpan = captureSelection();
    if (!pendingSpan) return false;
    const picker = $("#span-picker");
    $("#span-picker-text").textContent = "“" + (pendingSpan.text.length > 60 ? pendingSpan.text.slice(0, 57) + "…" : pendingSpan.text) + "” in Response " + pendingSpan.response;
    const body = $("#response-" + pendingSpan.response).closest(".response");
    body.appendChild(picker);
    show(picker, true);
    return true;
  }
  function chooseSpanType(type) {
    show($("#span-picker"), false);
    if (type && pendingSpan) {
      const { response, start, end, text } = pendingSpan;
      if (!spans.some((s) => s.response === response && s.start === start && s.end === end && s.type === type)) {
        spans.push({ response, start, end, type, text });
      }
      window.getSelection().removeAllRanges();
      renderSpanLists();
      say(`Tagged as ${type.replace(/_/g, " ")} in Response ${response}.`);
    }
    pendingSpan = null;
  }
  $$("#span-picker button").forEach((b) => b.addEventListener("click", () => chooseSpanType(b.dataset.type)));
  $$(".response-body").forEach((el) => el.addEventListener("mouseup", () => setTimeout(openSpanPicker, 0)));

  // ------------------------------------------------------------------ the judgment
  function preference() { const el = $("input[name=preference]:checked"); return el ? el.value : null; }
  function rationaleRequired() {
    const p = preference();
    return policy === "always" || (policy === "ties_and_strong" && p !== null && STRONG_OR_TIE.has(p));
  }
  function updateRationaleRequirement() {
    const req = rationaleRequired();
    show($("#rationale-req"), req);
    $("#rationale").required = req;
  }
  $$("input[name=preference]").forEach((i) => i.addEventListener("change", updateRationaleRequirement));

  function collect() {
    const criteria = {};
    for (const c of rubric) {
      const el = $(`input[name="criterion:${c.key}"]:checked`);
      if (el) criteria[c.key] = el.value;
    }
    const flags = {}, unsafe = {};
    for (const slot of ["1", "2"]) {
      flags[slot] = $$(`input[name=flag${slot}]:checked`).map((i) => i.value);
      unsafe[slot] = $(`input[name=unsafe${slot}]`).checked;
    }
    return {
      preference: preference(),
      criteria, flags, unsafe,
      both_unacceptable: $("#both-unacceptable").checked,
      harm_severity: $("#harm-severity").value,
      error_spans: spans.map(({ response, start, end, type }) => ({ response, start, end, type })),
      rationale: $("#rationale").value.trim(),
    };
  }
  /** The first problem of the answer: [message, the control that needs attention], or null. */
  function validate(body) {
    const keys = shortcutsOn();
    if (!body.preference) return [`Choose which response is better${keys ? ": keys 1 to 5" : ""}.`, $("input[name=preference]")];
    const vetoed = body.unsafe["1"] || body.unsafe["2"] || body.both_unacceptable;
    if (vetoed && body.harm_severity === "none") return [`You vetoed a response or marked both unacceptable: choose a harm severity${keys ? " (key v)" : ""}.`, $("#harm-severity")];
    if (rationaleRequired() && !body.rationale) return [`This batch asks for a rationale for ties and strong preferences${keys ? " (key r)" : ""}.`, $("#rationale")];
    return null;
  }

  async function post(url, body) {
    // Retries resend the identical body, idempotency key included.
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify(body),
        });
      } catch (err) {
        if (attempt >= 4) throw err;
        banner("warning", "Connection lost. Resending the same judgment; it will be stored once…");
        await sleep(1000 * 2 ** attempt);
      }
    }
  }

  async function submit() {
    if (!current || submitting) return;
    const body = collect();
    const problem = validate(body);
    if (problem) { showProblem(problem[0], problem[1]); return; }
    formError("");
    submitting = true;
    $("#submit").disabled = true;
    const assignmentId = current.assignment_id;
    body.idempotency_key = keyFor(assignmentId);
    // A correction adds its minutes to the first pass: the pair took both.
    body.time_spent_ms = elapsedMs() + (correcting ? correction.prefill.time_spent_ms || 0 : 0);
    let response;
    try {
      response = await post(`/api/assignments/${assignmentId}/judgment/`, body);
    } catch (err) {
      submitting = false;
      $("#submit").disabled = false;
      banner("error", "Could not reach the server. Your judgment is still on this page: press Enter to send it again (it will be stored once).");
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (response.ok && correcting) {
      sessionStorage.removeItem(keyName(assignmentId));
      window.location.assign(ws.dataset.reviewUrl.replace("{id}", String(data.id)));
      return;
    }
    if (response.ok) {
      sessionStorage.removeItem(keyName(assignmentId));
      dropDraft(assignmentId);
      loadNext(response.status === 200 ? "That judgment was already saved; it was stored once." : "");
      return;
    }
    submitting = false;
    $("#submit").disabled = false;
    if (correcting) {
      showProblem(data.detail || `The server answered ${response.status}.`, null);
    } else if (data.code === "lease_expired") {
      leaseLost("Your hold on that pair ran out before you submitted, so nothing was stored. Your answer is kept on this page.");
    } else if (response.status === 409) {
      dropDraft(assignmentId);
      banner("error", data.detail || "This pair can no longer be judged.");
      loadNext(data.detail);
    } else {
      showProblem(data.detail || `The server answered ${response.status}.`, null);
    }
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });

  // ------------------------------------------------------------------ skip
  const skipDialog = $("#skip-dialog"); // absent in correction mode: a submitted pair cannot be skipped
  function openSkip() { if (!current || !skipDialog) return; $("#skip-reason").value = ""; skipDialog.showModal(); $("#skip-reason").focus(); }
  if (skipDialog) {
    $("#skip-open").addEventListener("click", openSkip);
    $("#skip-cancel").addEventListener("click", () => skipDialog.close());
    $("#skip-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const reason = $("#skip-reason").value.trim();
      if (!reason || !current) { $("#skip-reason").focus(); return; }
      skipDialog.close();
      const response = await post(`/api/assignments/${current.assignment_id}/skip/`, { reason }).catch(() => null);
      if (!response) { banner("error", "Could not reach the server; the pair was not skipped."); return; }
      const data = await response.json().catch(() => ({}));
      if (response.ok || data.code === "lease_expired") { dropDraft(current.assignment_id); loadNext(response.ok ? "Skipped. Here is the next pair." : data.detail); }
      else banner("error", data.detail || "Could not skip this pair.");
    });
  }

  // ------------------------------------------------------------------ help and keys
  const help = $("#help-dialog");
  function toggleHelp() { if (help.open) help.close(); else help.showModal(); }
  $("#help-open").addEventListener("click", toggleHelp);
  if (!correcting) $("#check-again").addEventListener("click", () => loadNext(""));

  function toggle(input) { input.checked = !input.checked; input.dispatchEvent(new Event("change", { bubbles: true })); }
  function cycleSeverity(step) {
    const sel = $("#harm-severity");
    const i = SEVERITIES.indexOf(sel.value);
    sel.value = SEVERITIES[(i + step + SEVERITIES.length) % SEVERITIES.length];
    sel.dispatchEvent(new Event("change", { bubbles: true }));
    say("Harm severity: " + sel.options[sel.selectedIndex].text);
    sel.classList.add("pulse");
    setTimeout(() => sel.classList.remove("pulse"), 300);
  }

  // WCAG 2.1.4: single-character shortcuts can be turned off; the choice is remembered.
  function shortcutsOn() { return localStorage.getItem(SHORTCUTS) !== "off"; }
  function applyShortcuts() {
    const on = shortcutsOn();
    document.body.classList.toggle("shortcuts-off", !on);
    const toggleBox = $("#shortcuts-toggle");
    if (toggleBox) toggleBox.checked = on;
  }
  if ($("#shortcuts-toggle")) {
    $("#shortcuts-toggle").addEventListener("change", (e) => {
      localStorage.setItem(SHORTCUTS, e.target.checked ? "on" : "off");
      applyShortcuts();
      say(e.target.checked ? "Single-key shortcuts are on." : "Single-key shortcuts are off. Enter still submits.");
    });
  }
  applyShortcuts();

  document.addEventListener("keydown", (e) => {
    if (e.isComposing) return;
    if (skipDialog && skipDialog.open) return; // the dialog's own form handles Enter and Esc
    if (help.open) { if (e.key === "?") { e.preventDefault(); help.close(); } return; }
    if (!current) return;
    const t = e.target;
    const typing = t.matches && t.matches("textarea, input[type=text], input:not([type]), select");
    if (typing) {
      if (e.key === "Escape") { t.blur(); form.focus({ preventScroll: true }); e.preventDefault(); }
      else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (!shortcutsOn()) {
      // Only Enter (submit) and Esc (close the picker) remain: no single-character shortcuts.
      if (e.key === "Escape" && !$("#span-picker").hidden) { e.preventDefault(); chooseSpanType(""); }
      else if (e.key === "Enter" && !(t.matches && t.matches("button, a, summary"))) { e.preventDefault(); submit(); }
      return;
    }
    if (!$("#span-picker").hidden) {
      const types = $$("#span-picker button[data-type]").map((b) => b.dataset.type).filter(Boolean);
      if (/^[1-5]$/.test(e.key)) { e.preventDefault(); chooseSpanType(types[Number(e.key) - 1]); return; }
      if (e.key === "Escape") { e.preventDefault(); chooseSpanType(""); return; }
    }
    const key = e.key;
    if (/^[1-5]$/.test(key)) {
      const radio = $$("input[name=preference]")[Number(key) - 1];
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      formError("");
    } else if (FLAG_KEYS[key.toLowerCase()] && !e.altKey) {
      const slot = key === key.toUpperCase() ? "2" : "1";
      toggle($(`input[name=flag${slot}][value=${FLAG_KEYS[key.toLowerCase()]}]`));
    } else if (key === "x" || key === "X") {
      toggle($(`input[name=unsafe${key === "X" ? "2" : "1"}]`));
    } else if (key === "b") {
      toggle($("#both-unacceptable"));
    } else if (key === "v" || key === "V") {
      cycleSeverity(key === "V" ? -1 : 1);
    } else if (key === "r") {
      $("#rationale").focus();
    } else if (key === "c") {
      const box = $("#criteria-box");
      box.open = true;
      const first = $("#criteria input");
      if (first) first.focus();
    } else if (key === "t") {
      tagSentence(null);
    } else if (key === "n" || key === "N") {
      moveSentence(1, null);
    } else if (key === "p" || key === "P") {
      moveSentence(-1, null);
    } else if (key === "s" || key === "S") {
      openSkip();
    } else if (key === "?") {
      toggleHelp();
    } else if (key === "Enter") {
      if (t.matches && t.matches("button, a, summary")) return; // let the focused control act
      submit();
    } else {
      return;
    }
    e.preventDefault();
  });

  if (correcting) { render(correction.assignment); prefill(correction.prefill); }
  else loadNext("");
})();
