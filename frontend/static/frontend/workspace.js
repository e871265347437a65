/* The labeling workspace: one pair at a time, keyboard first, fetched without page reloads.
 *
 * Safety of submissions: each assignment gets ONE idempotency key, generated when the pair
 * is first shown and kept in sessionStorage until the server confirms. Retries after a lost
 * connection, a double Enter or a double click all resend that key, and the server stores a
 * key once, so a judgment is never lost and never doubled.
 *
 * Correction mode (data-mode="correct", /judgments/<id>/correct/): the same form, pre-filled
 * from a submitted judgment. A NEW key, kept per corrected judgment, makes the server store the
 * next revision; retries resend that key, so one correction is one revision. No lease, no skip. */
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
  const STRONG_OR_TIE = new Set(["1>>2", "=", "2>>1"]);
  const FLAG_KEYS = { h: "hallucination", u: "unsafe_advice", o: "outdated_guidance" };

  let current = null;     // the assignment payload on screen
  let spans = [];         // [{response: 1|2, start, end, type, text}]
  let pendingSpan = null; // a selection waiting for its error type
  let submitting = false;
  let clockOffset = 0;    // server time - client time, from the Date header
  let leaseTimer = null;
  let activeMs = 0, activeSince = null;

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
    if (p.batch) setBar($("#batch-progress"), $("#batch-progress-text"), p.batch.percent, p.batch.percent + "%");
    const total = p.mine_done + p.left_for_me;
    setBar($("#my-progress"), $("#my-progress-text"), total ? (100 * p.mine_done) / total : 100, `${p.mine_done} done · ${p.left_for_me} left`);
  }
  function startLease(expiresAt) {
    clearInterval(leaseTimer);
    const lease = $("#lease");
    const expires = new Date(expiresAt).getTime();
    const tick = () => {
      const left = Math.round((expires - (Date.now() + clockOffset)) / 1000);
      if (left <= 0) {
        clearInterval(leaseTimer);
        lease.textContent = "Lease expired";
        lease.className = "lease lease-expired";
        if (!submitting) loadNext("Your hold on that pair expired, so it went back to the pool. Here is a fresh pair.");
        return;
      }
      const m = Math.floor(left / 60), s = String(left % 60).padStart(2, "0");
      lease.textContent = `Lease ${m}:${s} left`;
      lease.className = "lease" + (left < 120 ? " lease-warning" : "");
    };
    tick();
    leaseTimer = setInterval(tick, 1000);
  }

  // ------------------------------------------------------------------ loading and rendering
  async function loadNext(notice) {
    current = null;
    clearInterval(leaseTimer);
    show(form, false); show($("#state-done"), false); show($("#state-loading"), true);
    let response;
    for (let attempt = 0; ; attempt++) {
      try {
        response = await fetch(ws.dataset.nextUrl, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
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
      return;
    }
    render(data.assignment);
    banner(notice ? "warning" : "", notice || "");
  }

  function render(a) {
    current = a;
    form.dataset.assignmentId = String(a.assignment_id);
    spans = [];
    pendingSpan = null;
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
        input.setAttribute("aria-label", `${c.label}: ${v}`);
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
    $("#both-unacceptable").checked = p.both_unacceptable;
    $("#harm-severity").value = p.harm_severity;
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
  function validate(body) {
    if (!body.preference) return "Choose which response is better: keys 1 to 5.";
    const vetoed = body.unsafe["1"] || body.unsafe["2"] || body.both_unacceptable;
    if (vetoed && body.harm_severity === "none") return "You marked a response unsafe or unacceptable: choose a harm severity (key v).";
    if (rationaleRequired() && !body.rationale) return "This batch asks for a rationale for ties and strong preferences (key r).";
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
    if (problem) { formError(problem); return; }
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
      loadNext(response.status === 200 ? "That judgment was already saved; it was stored once." : "");
      return;
    }
    submitting = false;
    $("#submit").disabled = false;
    if (correcting) {
      formError(data.detail || `The server answered ${response.status}.`);
    } else if (data.code === "lease_expired") {
      sessionStorage.removeItem(keyName(assignmentId));
      loadNext("Your hold on that pair expired before you submitted, so it may have gone to another physician. Here is a fresh pair.");
    } else if (response.status === 409) {
      banner("error", data.detail || "This pair can no longer be judged.");
      loadNext(data.detail);
    } else {
      formError(data.detail || `The server answered ${response.status}.`);
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
      if (response.ok || data.code === "lease_expired") loadNext(response.ok ? "Skipped. Here is the next pair." : data.detail);
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
    sel.classList.add("pulse");
    setTimeout(() => sel.classList.remove("pulse"), 300);
  }

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
      if (!openSpanPicker()) banner("info", "Select some text inside a response first, then press t.");
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
