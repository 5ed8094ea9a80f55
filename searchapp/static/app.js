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
})();
