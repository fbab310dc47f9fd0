// The chat page's one script: the citation popover, the copy buttons, the question counter, the skip link.
//
// It only reads the page: the popover is built from the citation (its title holds the sentence that claim rests
// on) and the source card it links to (its data- attributes hold the title, authors, year, the paper's best
// evidence sentence and the verifier's verdict), so what it shows is exactly what the answer and the panel say. It
// is installed once (Gradio runs it on load) and listens on the document, so Gradio re-rendering a message or the
// panel never detaches it. It also names each citation for screen readers ("Source 1: <title>, page 5") and opens
// the popover from the keyboard (Enter on a citation; Escape closes it and returns to the citation).
//
// This file is one function expression of ``config`` ({maxQuestionChars, palette}); assistant/ui/assets.py calls it
// with the page's values, written as JSON.
(config) => {
  if (window.__assistantPage) return;
  window.__assistantPage = true;
  const MAX = config.maxQuestionChars;
  const LINK = '#chatbot a[href^="#src-"]';
  const pop = document.createElement('div');
  pop.id = 'cite-pop'; pop.setAttribute('role', 'dialog'); pop.setAttribute('aria-label', 'Source'); pop.hidden = true;
  document.body.appendChild(pop);
  const touch = () => window.matchMedia('(hover: none)').matches;
  let lastLink = null;

  function cardFor(a) {
    const id = decodeURIComponent((a.getAttribute('href') || '').slice(1));
    return document.getElementById(id);
  }
  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text) e.textContent = text; return e; }
  function pageLink(a) {
    const next = a.nextElementSibling;
    return next && (next.getAttribute('href') || '').includes('#page=') ? next : null;
  }
  function pageOf(a) {  // "[3, p. 5]": the page after the number, linked to the PDF or plain text
    const link = pageLink(a);
    const text = link ? link.textContent : (a.nextSibling && a.nextSibling.nodeType === 3 ? a.nextSibling.textContent : '');
    const m = /^,?\s*p\.\s*(\d+)/.exec(text || '');
    return m ? m[1] : '';
  }
  function nameOf(a) {
    const card = cardFor(a);
    const n = (a.textContent || '').trim();
    const page = pageOf(a);
    return 'Source ' + n + (card && card.dataset.title ? ': ' + card.dataset.title : '') + (page ? ', page ' + page : '');
  }
  // Each citation is named for screen readers ("Source 1: <title>, page 5", not "1") and says it opens a dialog;
  // Gradio adds and replaces messages and cards as answers stream, so the names follow the page.
  let naming = 0;
  function nameLinks() {
    naming = 0;
    document.querySelectorAll(LINK).forEach(a => {
      const name = nameOf(a);
      if (a.getAttribute('aria-label') !== name) a.setAttribute('aria-label', name);
      if (a.getAttribute('aria-haspopup') !== 'dialog') { a.setAttribute('aria-haspopup', 'dialog'); a.setAttribute('aria-expanded', 'false'); }
    });
  }
  new MutationObserver(() => { if (!naming) naming = setTimeout(nameLinks, 50); })
    .observe(document.body, {childList: true, subtree: true});
  function show(a, pinned) {
    const card = cardFor(a);
    if (!card) return;
    if (a.title) { a.dataset.evidence = a.title; a.removeAttribute('title'); }  // the popover replaces the tooltip
    const d = card.dataset;
    if (lastLink && lastLink !== a) lastLink.setAttribute('aria-expanded', 'false');
    pop.replaceChildren();
    pop.setAttribute('aria-label', nameOf(a));
    pop.appendChild(el('div', 'pop-title', '[' + d.n + '] ' + d.title));
    if (d.meta) pop.appendChild(el('div', 'pop-meta', d.meta));
    const page = pageLink(a);
    // The sentence this claim rests on (the citation's title), else the paper's best (answers saved before claims).
    const said = a.dataset.evidence || d.evidence;
    if (said) { const q = el('blockquote', 'hl hl-' + ((+d.n - 1) % config.palette), said); pop.appendChild(q); }
    else pop.appendChild(el('div', 'pop-meta', 'No single sentence of the abstract was aligned to this claim.'));
    if (d.verdict) pop.appendChild(el('div', 'pop-verdict ' + (d.verdict.startsWith('supported') ? 'ok' : 'bad'), 'Verifier: ' + d.verdict));
    const actions = el('div', 'pop-actions');
    const go = el('a', 'go', 'Show source card'); go.href = '#' + card.id; go.dataset.for = card.id;
    actions.appendChild(go);
    if (page || d.pdf) {
      const open = el('a', 'pdf', page ? 'Open the PDF at ' + page.textContent : 'Open the PDF');
      open.href = page ? page.getAttribute('href') : d.pdf; open.target = '_blank'; open.rel = 'noopener';
      actions.appendChild(open);
    }
    if (pinned) { const c = el('button', 'close', 'Close'); c.type = 'button'; actions.appendChild(c); }
    pop.appendChild(actions);
    pop.dataset.pinned = pinned ? '1' : '';
    pop.style.left = '0px'; pop.style.top = '0px';
    pop.hidden = false;
    const r = a.getBoundingClientRect();
    const w = pop.offsetWidth, h = pop.offsetHeight;
    let left = Math.max(0, Math.min(Math.max(8, r.left), window.innerWidth - w - 8));
    let top = r.bottom + 6;
    if (top + h > window.innerHeight - 8) top = Math.max(8, r.top - h - 6);
    pop.style.left = left + 'px'; pop.style.top = top + 'px';
    lastLink = a;
    a.setAttribute('aria-expanded', 'true');
  }
  function hide() {
    pop.hidden = true; pop.dataset.pinned = '';
    if (lastLink) lastLink.setAttribute('aria-expanded', 'false');
  }
  function openCard(id) {
    const card = document.getElementById(id);
    if (!card) return;
    for (let d = card.parentElement; d; d = d.parentElement) if (d.tagName === 'DETAILS') d.open = true;
    document.querySelectorAll('.src.flash').forEach(x => x.classList.remove('flash'));
    card.classList.add('flash');
    // Beside the chat the panel scrolls on its own: move only it, so the answer stays where it was.
    const panel = document.getElementById('sources-panel');
    if (panel && panel.scrollHeight > panel.clientHeight + 4 && getComputedStyle(panel).overflowY !== 'visible') {
      panel.scrollTop += card.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
    } else {
      card.scrollIntoView({block: 'start'});
    }
    if (touch() && lastLink) {
      let back = document.getElementById('back-to-answer');
      if (!back) { back = el('button', '', '↑ Back to the answer'); back.id = 'back-to-answer'; back.type = 'button'; document.body.appendChild(back); }
      back.hidden = false;
    }
  }
  document.addEventListener('mouseover', e => {
    const a = e.target.closest && e.target.closest(LINK);
    if (a && !touch()) show(a, false);
  });
  document.addEventListener('mouseout', e => {
    const a = e.target.closest && e.target.closest(LINK);
    if (a && !pop.dataset.pinned && !(e.relatedTarget && pop.contains(e.relatedTarget))) hide();
  });
  pop.addEventListener('mouseleave', () => { if (!pop.dataset.pinned) hide(); });
  // The keyboard: Enter on a citation opens the popover as a dialog with the focus in it (not the source card, as
  // a click does); Escape closes it and returns to the citation; Tab out of it closes it too.
  document.addEventListener('focusin', e => {
    if (!pop.hidden && !pop.contains(e.target) && e.target !== lastLink) hide();
  });
  document.addEventListener('keydown', e => {
    const a = e.target.closest && e.target.closest(LINK);
    if (a && e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey) {
      e.preventDefault(); e.stopPropagation();  // no click: that would open the card instead
      show(a, true);
      const first = pop.querySelector('a, button');
      if (first) first.focus();
      return;
    }
    if (e.key === 'Escape' && !pop.hidden) {
      const back = pop.contains(document.activeElement) ? lastLink : null;
      hide();
      if (back) back.focus();
      return;
    }
    if (e.key === 'Tab' && pop.contains(e.target)) {
      const stops = [...pop.querySelectorAll('a, button')];
      if ((e.shiftKey && e.target === stops[0]) || (!e.shiftKey && e.target === stops[stops.length - 1])) {
        e.preventDefault(); const back = lastLink; hide(); if (back) back.focus();
      }
    }
  }, true);
  // On a touch screen a tap on [n] pins the popover at touchend: the click that follows may land on the
  // paragraph beside a small superscript link (the browser adjusts a tap's point), so it is not waited for.
  let touchedLink = null;
  document.addEventListener('touchstart', e => { touchedLink = e.target.closest && e.target.closest(LINK); }, {capture: true, passive: true});
  document.addEventListener('touchmove', () => { touchedLink = null; }, {capture: true, passive: true});
  document.addEventListener('touchend', e => {
    const a = touchedLink; touchedLink = null;
    if (a && e.cancelable) { e.preventDefault(); show(a, true); }  // preventDefault: no click after it
  }, {capture: true, passive: false});
  document.addEventListener('click', e => {
    const t = e.target;
    const a = t.closest && t.closest(LINK);
    if (a) {
      e.preventDefault(); e.stopPropagation();
      const id = decodeURIComponent(a.getAttribute('href').slice(1));
      if (touch()) show(a, true); else { hide(); lastLink = a; openCard(id); }
      return;
    }
    const pageLink = t.closest && t.closest('#chatbot a[href*="#page="]');
    if (pageLink) { e.preventDefault(); e.stopPropagation(); window.open(pageLink.getAttribute('href'), '_blank', 'noopener'); return; }
    const go = t.closest && t.closest('#cite-pop a.go');
    if (go) { e.preventDefault(); hide(); openCard(go.dataset.for); return; }
    if (t.closest && t.closest('#cite-pop .close')) { hide(); return; }
    if (t.id === 'back-to-answer') { t.hidden = true; if (lastLink) lastLink.scrollIntoView({block: 'center'}); return; }
    const copy = t.closest && t.closest('button.copy-md');
    if (copy) {
      const src = document.getElementById(copy.dataset.from);
      const text = src ? decodeURIComponent(src.getAttribute('href').split(',').slice(1).join(',')) : '';
      const done = () => { copy.textContent = 'Copied ✓'; setTimeout(() => { copy.textContent = 'Copy as Markdown'; }, 2000); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => fallback(text, done));
      else fallback(text, done);
      return;
    }
    if (pop.dataset.pinned && !pop.contains(t)) hide();
  }, true);
  function fallback(text, done) {
    const ta = document.createElement('textarea'); ta.value = text; document.body.appendChild(ta); ta.select();
    try { document.execCommand('copy'); done(); } finally { ta.remove(); }
  }
  // A short way to the question from the keyboard: the first Tab reaches "Skip to the question", and "/" jumps there.
  const focusQuestion = () => { const box = document.querySelector('#question textarea'); if (box) { box.focus(); return true; } return false; };
  const skip = el('a', 'skip-link', 'Skip to the question');
  skip.href = '#question'; skip.id = 'skip-to-question';
  skip.addEventListener('click', e => { e.preventDefault(); focusQuestion(); });
  document.body.insertBefore(skip, document.body.firstChild);
  document.addEventListener('keydown', e => {
    const t = e.target;
    const typing = t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' || t.isContentEditable);
    if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey && focusQuestion()) e.preventDefault();
  });
  // On a phone the conversation list would cover the chat: start with it folded (its toggle opens it).
  if (window.matchMedia('(max-width: 768px)').matches) {
    let tries = 0;
    const fold = setInterval(() => {
      const bar = document.querySelector('#sidebar.open');
      if (bar) { bar.querySelector('.toggle-button').click(); clearInterval(fold); }
      if (++tries > 50) clearInterval(fold);
    }, 100);
  }
  // The question counter follows the box (typing, pasting, and the page clearing it after a question).
  setInterval(() => {
    const box = document.querySelector('#question textarea');
    const counter = document.getElementById('q-counter');
    if (!box || !counter) return;
    const n = box.value.length;
    const text = n > MAX ? n.toLocaleString('en') + ' / ' + MAX.toLocaleString('en') + ' characters: ' + (n - MAX).toLocaleString('en') + ' too many'
                         : n.toLocaleString('en') + ' / ' + MAX.toLocaleString('en') + ' characters';
    if (counter.textContent !== text) { counter.textContent = text; counter.classList.toggle('over', n > MAX); }
  }, 200);
}
