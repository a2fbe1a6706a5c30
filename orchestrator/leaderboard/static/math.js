/* deathmath-orchestrate: formulas on the answers page (results/details/<model>/index.html), rendered by MathJax 3.
 *
 * Every element of class "m" holds an answer's text as the page wrote it (HTML-escaped, so the browser parsed it as
 * text). Its textContent is scanned for $...$, $$...$$, \(...\), \[...\] and, outside those, \boxed{...}; an element
 * of class "mx" (a reference or an extracted answer) is one formula as a whole when it has no delimiter but looks
 * like TeX. Each formula goes through MathJax.tex2chtml; the page is built with DOM calls only (text nodes and
 * MathJax's own nodes, never innerHTML). A formula MathJax cannot parse stays raw (class "m-bad", its error in the
 * title). MathJax runs without trust: the "safe" extension filters \href URLs, classes, ids and styles, and the
 * packages that add HTML or load code (html, require, autoload) are left out.
 *
 * The raw text stays in the element (class "m-raw", hidden unless the page's body has class "raw": the "raw LaTeX"
 * toggle), so the page's filters and search, which read the text at load, see the raw text. Elements are rendered
 * when they scroll into view (a closed answer is rendered when opened); deathmathMath.renderAll() renders the rest.
 */
(function () {
  'use strict';
  var api = {rendered: 0, failed: 0};
  var readyResolve;
  api.ready = new Promise(function (resolve) { readyResolve = resolve; });
  window.deathmathMath = api;

  window.MathJax = {
    loader: {load: ['ui/safe']},
    tex: {
      packages: {'[-]': ['html', 'require', 'autoload', 'noundefined', 'noerrors']},
      formatError: function (jax, err) { throw err; }
    },
    chtml: {matchFontHeight: false, scale: 1.1},
    options: {enableMenu: false, safeOptions: {allow: {URLs: 'safe', classes: 'safe', cssIDs: 'safe', styles: 'safe'}}},
    startup: {
      typeset: false,
      pageReady: function () { return start(); }
    }
  };

  function closing(s, from, delim) {
    for (var i = from; i <= s.length - delim.length; i++) {
      if (s[i] === '\\') { i++; continue; }
      if (s.substr(i, delim.length) === delim) return i;
    }
    return -1;
  }

  function braceEnd(s, open) {
    var depth = 0;
    for (var i = open; i < s.length; i++) {
      if (s[i] === '\\') { i++; continue; }
      if (s[i] === '{') depth++;
      else if (s[i] === '}' && --depth === 0) return i;
    }
    return -1;
  }

  /* [{text}, {tex, display, raw}, ...] of s; unmatched delimiters stay text. */
  function segments(s) {
    var out = [], last = 0, i = 0;
    function math(start, end, tex, display) {
      if (start > last) out.push({text: s.slice(last, start)});
      out.push({tex: tex, display: display, raw: s.slice(start, end)});
      last = i = end;
    }
    while (i < s.length) {
      var c = s[i], n = s[i + 1], j;
      if (c === '\\' && (n === '(' || n === '[')) {
        j = s.indexOf(n === '(' ? '\\)' : '\\]', i + 2);
        if (j > i + 2) { math(i, j + 2, s.slice(i + 2, j), n === '['); continue; }
      } else if (c === '\\' && s.substr(i, 7) === '\\boxed{') {
        j = braceEnd(s, i + 6);
        if (j > 0) { math(i, j + 1, s.slice(i, j + 1), false); continue; }
      } else if (c === '$') {
        var wide = n === '$' ? 2 : 1;
        j = closing(s, i + wide, wide === 2 ? '$$' : '$');
        if (j > i + wide) { math(i, j + wide, s.slice(i + wide, j), wide === 2); continue; }
        i += wide; continue;
      }
      i += c === '\\' ? 2 : 1;
    }
    if (last < s.length) out.push({text: s.slice(last)});
    return out;
  }

  function whole(s) {
    var t = s.trim();
    return t && !/\$|\\\(|\\\[/.test(t) && /[\\^_{]/.test(t) ? [{tex: t, display: false, raw: s}] : null;
  }

  function formula(seg) {
    try {
      var node = MathJax.tex2chtml(seg.tex, {display: seg.display});
      api.rendered++;
      return node;
    } catch (err) {
      api.failed++;
      var bad = document.createElement('span');
      bad.className = 'm-bad';
      bad.title = 'not rendered: ' + (err && err.message ? err.message : String(err));
      bad.textContent = seg.raw;
      return bad;
    }
  }

  function render(el) {
    if (el.dataset.m) return false;
    el.dataset.m = '1';
    var raw = el.textContent;
    var segs = (el.classList.contains('mx') && whole(raw)) || segments(raw);
    if (!segs.some(function (seg) { return seg.tex !== undefined; })) return false;
    var rawSpan = document.createElement('span'), out = document.createElement('span');
    rawSpan.className = 'm-raw';
    rawSpan.textContent = raw;
    out.className = 'm-out';
    segs.forEach(function (seg) {
      out.appendChild(seg.tex === undefined ? document.createTextNode(seg.text) : formula(seg));
    });
    el.textContent = '';
    el.appendChild(rawSpan);
    el.appendChild(out);
    return true;
  }

  function renderSome(els) {
    var changed = false;
    els.forEach(function (el) { changed = render(el) || changed; });
    if (changed) {  // the CHTML stylesheet gains the glyphs of the new formulas
      MathJax.startup.document.clear();
      MathJax.startup.document.updateDocument();
    }
  }

  function start() {
    var els = [].slice.call(document.querySelectorAll('.m'));
    var toggle = document.getElementById('raw');
    if (toggle) {
      toggle.addEventListener('change', function () { document.body.classList.toggle('raw', toggle.checked); });
    }
    api.renderAll = function () {
      renderSome(els);
      return {rendered: api.rendered, failed: api.failed};
    };
    if ('IntersectionObserver' in window) {
      var seen = new IntersectionObserver(function (entries) {
        var now = entries.filter(function (e) { return e.isIntersecting; }).map(function (e) { return e.target; });
        now.forEach(function (el) { seen.unobserve(el); });
        renderSome(now);
      }, {rootMargin: '200px'});
      els.forEach(function (el) { seen.observe(el); });
    } else {
      renderSome(els);
    }
    readyResolve(api);
    return Promise.resolve();
  }
})();
