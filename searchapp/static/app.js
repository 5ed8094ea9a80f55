// Small enhancements on top of htmx; every feature also works without JavaScript.
(function () {
  "use strict";
  // "/" focuses the search box, as on most search sites.
  document.addEventListener("keydown", function (e) {
    var q = document.getElementById("q");
    if (e.key === "/" && q && document.activeElement !== q &&
        !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      e.preventDefault();
      q.focus();
      q.select();
    }
  });

  // -- Typing ---------------------------------------------------------------------
  // Search on typing pauses, never while an input method is composing (pinyin such as
  // "jingji" is not what the reader means: 经济 is, once chosen). app.js only decides
  // *when*: it dispatches "search:suggest" and "search:typed" on #q, and the requests
  // are declared in _search_form.html (#q itself for suggestions, #search-typing for
  // results, with hx-replace-url).
  var SUGGEST_MS = 150;
  var SEARCH_MS = 300;
  var composing = false;
  var suggestTimer = 0;
  var searchTimer = 0;
  // A typing session runs from the first search of a typing pause to the next other
  // navigation (Enter, a filter, a sort, a page, back/forward). Its first search pushes
  // one history entry and the later ones replace it.
  var sessionPushed = false;
  var sessionWords = null;  // the words this session last searched for

  function words(s) { return (s || "").trim().replace(/\s+/g, " "); }
  function isQ(el) { return !!el && el.id === "q"; }
  function isTyping(el) { return !!el && el.id === "search-typing"; }

  function cancelTyping() {
    clearTimeout(suggestTimer);
    clearTimeout(searchTimer);
    suggestTimer = searchTimer = 0;
  }
  function endSession() {
    cancelTyping();
    sessionPushed = false;
    sessionWords = null;
  }
  function shownWords() {
    var state = document.getElementById("search-state");
    return words(state && state.getAttribute("data-q"));
  }
  function schedule(q) {
    cancelTyping();
    suggestTimer = setTimeout(function () {
      if (q.isConnected) { q.dispatchEvent(new CustomEvent("search:suggest", {bubbles: true})); }
    }, SUGGEST_MS);
    searchTimer = setTimeout(function () {
      if (!q.isConnected) { return; }
      var now = words(q.value);
      if (now === (sessionWords === null ? shownWords() : sessionWords)) { return; }
      sessionWords = now;
      q.dispatchEvent(new CustomEvent("search:typed", {bubbles: true}));
    }, SEARCH_MS);
  }

  // While a composition is open nothing is scheduled (input events say isComposing;
  // the flag also covers browsers that fire them without it), and a pause scheduled
  // just before it began is cancelled: the reader is still choosing characters.
  document.addEventListener("compositionstart", function (e) {
    if (isQ(e.target)) { composing = true; cancelTyping(); }
  });
  document.addEventListener("compositionend", function (e) {
    if (isQ(e.target)) { composing = false; schedule(e.target); }
  });
  document.addEventListener("input", function (e) {
    if (!isQ(e.target) || composing || e.isComposing) { return; }
    schedule(e.target);
  });
  // Any request other than typing's own (Enter, a facet, a sort, a page, a link)
  // ends the typing session; so does back/forward.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var from = e.detail && e.detail.elt;
    if (!isQ(from) && !isTyping(from)) { endSession(); }
  });
  window.addEventListener("popstate", endSession);

  function samePlace(path) {
    var u = new URL(path, location.href);
    return u.pathname === location.pathname &&
      new URLSearchParams(u.search).toString() === new URLSearchParams(location.search).toString();
  }
  // Push or replace: typing replaces (hx-replace-url) except for its session's first
  // search, which pushes; nothing pushes a second entry for the URL already shown
  // (Enter after a typing pause, or twice on the same words).
  document.addEventListener("htmx:beforeHistoryUpdate", function (e) {
    var h = e.detail.history;
    var typing = isTyping(e.detail.requestConfig && e.detail.requestConfig.elt);
    if (typing && !sessionPushed) { h.type = "push"; }
    if (h.type === "push" && samePlace(h.path)) { h.type = "replace"; }
    if (typing && h.type === "push") { sessionPushed = true; }
  });

  // Keep the search box in step with the URL after back/forward restores a page.
  document.addEventListener("htmx:historyRestore", function () {
    endSession();
    composing = false;  // the box was replaced; a composition in the old one is gone
    var q = document.getElementById("q");
    if (q) { q.value = new URLSearchParams(location.search).get("q") || ""; }
  });
  // After an update that did not come from typing, keep the search box in step with
  // the state the server sent (a relaxation link may change the words), and move
  // focus to the results so keyboard users do not start again from the top.
  document.addEventListener("htmx:afterSettle", function (e) {
    var q = document.getElementById("q");
    var state = document.getElementById("search-state");
    var form = document.getElementById("search-form");
    var from = e.detail && e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!q || !state || (from && ((form && form.contains(from)) || isTyping(from)))) { return; }
    if (document.activeElement !== q) { q.value = state.getAttribute("data-q") || ""; }
    var main = document.getElementById("main");
    if (main && e.detail.target && e.detail.target.id === "main" && document.activeElement === document.body) {
      main.focus({preventScroll: true});
    }
  });
  // The filter box of an expanded facet list hides values that do not match.
  document.addEventListener("input", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("input[data-filter-list]")) { return; }
    var list = document.getElementById(box.getAttribute("data-filter-list"));
    var needle = box.value.trim().toLowerCase();
    if (!list) { return; }
    list.querySelectorAll("li").forEach(function (li) {
      li.hidden = needle !== "" && li.textContent.toLowerCase().indexOf(needle) === -1;
    });
  });
})();
