/* Error spans: map between character offsets in the RAW completion text (what the server
 * stores) and positions in its rendered, sanitised Markdown (what the physician selects).
 *
 * The server escapes raw HTML instead of interpreting it, so the rendered text is (almost)
 * a subsequence of the raw text: Markdown only removes syntax (**, #, list bullets) and adds
 * a few newlines between blocks. A greedy alignment of rendered characters onto raw ones is
 * therefore exact for the characters a physician can select. */
"use strict";
window.ClinSpans = (() => {
  function textNodes(root) {
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) out.push(walker.currentNode);
    return out;
  }

  /** rendered index -> raw index, or -1 where the renderer added a character. */
  function alignment(rendered, raw) {
    const map = new Array(rendered.length);
    let j = 0;
    for (let i = 0; i < rendered.length; i++) {
      const c = rendered[i];
      // Whitespace is looked for close by only: a newline inserted between blocks must not
      // drag the alignment far ahead to the next newline of the raw text.
      const limit = Math.min(raw.length, j + (/\s/.test(c) ? 3 : 400));
      let k = j;
      while (k < limit && raw[k] !== c) k++;
      if (k < limit) { map[i] = k; j = k + 1; } else { map[i] = -1; }
    }
    return map;
  }

  function indexOfPoint(root, node, offset) {
    const range = document.createRange();
    range.setStart(root, 0);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  /** The current selection inside `root` as raw offsets {start, end, text}, or null. */
  function selectionToRaw(root, raw) {
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    const range = sel.getRangeAt(0);
    if (!root.contains(range.startContainer) || !root.contains(range.endContainer)) return null;
    const rendered = root.textContent;
    const map = alignment(rendered, raw);
    let rs = indexOfPoint(root, range.startContainer, range.startOffset);
    let re = indexOfPoint(root, range.endContainer, range.endOffset);
    while (rs < re && (map[rs] === -1 || /\s/.test(rendered[rs]))) rs++;
    while (re > rs && (map[re - 1] === -1 || /\s/.test(rendered[re - 1]))) re--;
    if (re <= rs) return null;
    const start = map[rs], end = map[re - 1] + 1;
    return { start, end, text: raw.slice(start, end) };
  }

  /** A DOM Range over the rendered characters of raw[start:end] inside `root`, or null. */
  function rawToRange(root, raw, start, end) {
    const nodes = textNodes(root);
    const rendered = nodes.map((n) => n.data).join("");
    const map = alignment(rendered, raw);
    let first = -1, last = -1;
    for (let i = 0; i < rendered.length; i++) {
      if (map[i] >= start && map[i] < end) { if (first === -1) first = i; last = i; }
    }
    if (first === -1) return null;
    const point = (index) => {
      let base = 0;
      for (const node of nodes) {
        if (index < base + node.data.length) return [node, index - base];
        base += node.data.length;
      }
      const lastNode = nodes[nodes.length - 1];
      return [lastNode, lastNode.data.length];
    };
    const range = document.createRange();
    range.setStart(...point(first));
    const [endNode, endOffset] = point(last);
    range.setEnd(endNode, endOffset + 1);
    return range;
  }

  /** Re-render `html` into `root` and wrap the characters of each raw span in a <mark>. */
  function render(root, html, raw, spans) {
    root.innerHTML = html;
    if (!spans.length) return;
    const nodes = textNodes(root);
    const rendered = nodes.map((n) => n.data).join("");
    const map = alignment(rendered, raw);
    const owner = new Array(rendered.length).fill(-1);
    spans.forEach((span, si) => {
      for (let i = 0; i < rendered.length; i++) {
        if (map[i] >= span.start && map[i] < span.end) owner[i] = si;
      }
    });
    let base = 0;
    for (const node of nodes) {
      const len = node.data.length;
      const pieces = [];
      let i = 0;
      while (i < len) {
        let k = i;
        while (k < len && owner[base + k] === owner[base + i]) k++;
        pieces.push({ text: node.data.slice(i, k), span: owner[base + i] });
        i = k;
      }
      if (pieces.some((p) => p.span !== -1)) {
        const frag = document.createDocumentFragment();
        for (const p of pieces) {
          if (p.span === -1) { frag.appendChild(document.createTextNode(p.text)); continue; }
          const mark = document.createElement("mark");
          mark.className = "err err-" + spans[p.span].type;
          mark.title = spans[p.span].label || spans[p.span].type.replace(/_/g, " ");
          mark.textContent = p.text;
          frag.appendChild(mark);
        }
        node.parentNode.replaceChild(frag, node);
      }
      base += len;
    }
  }

  /** Review pages: <script id="span-data"> holds [{html, text, spans}], one per .review-body in page order. */
  function renderPage() {
    const data = document.getElementById("span-data");
    if (!data) return;
    const bodies = document.querySelectorAll(".review-body");
    JSON.parse(data.textContent).forEach((item, i) => render(bodies[i], item.html, item.text, item.spans));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderPage);
  else renderPage();

  return { alignment, selectionToRaw, rawToRange, render };
})();
