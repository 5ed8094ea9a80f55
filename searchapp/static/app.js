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
  // Keep the search box in step with the URL after back/forward restores a page.
  document.addEventListener("htmx:historyRestore", function () {
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
    if (!q || !state || (from && form && form.contains(from))) { return; }
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
