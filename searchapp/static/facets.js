// The filters on top of htmx; everything here also works without JavaScript (a link
// to #filters shown by :target, checkboxes in GET forms with an 应用 button).
//  - The 筛选 control becomes a button that opens the filters in place; they stay open
//    while htmx swaps #main after each ticked value, until the reader closes them.
//  - After a ticked value reloads the results, focus returns to the same checkbox, so a
//    keyboard reader can tick several values in a row.
(function () {
  "use strict";
  var open = false;        // the filters' state on a narrow screen, kept across swaps
  var refocus = null;      // {name, value} of the checkbox to focus after the swap

  // The 筛选 control is ours from now on (CSS stops following :target).
  document.documentElement.classList.add("filters-js");
  if (window.htmx) {
    // With htmx a change submits at once: the 应用 buttons are not needed.
    document.documentElement.classList.add("facets-live");
  }

  // The open state is a class on <html>, which htmx never swaps: the filters show
  // from the first frame of a new #main. The new control gets its ARIA on settling.
  function render() {
    document.documentElement.classList.toggle("filters-open", open);
    document.querySelectorAll(".filters-toggle").forEach(function (t) {
      t.setAttribute("role", "button");
      t.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function setOpen(value) {
    open = value;
    render();
  }

  document.addEventListener("click", function (e) {
    var toggle = e.target.closest && e.target.closest(".filters-toggle");
    if (toggle) {
      e.preventDefault();
      setOpen(!open);
      return;
    }
    var close = e.target.closest && e.target.closest(".filters-close");
    if (close) {
      e.preventDefault();
      setOpen(false);
      var list = document.getElementById("results-list");
      if (list) { list.focus(); }
    }
  });
  // A link with role=button is pressed with Space too.
  document.addEventListener("keydown", function (e) {
    if (e.key === " " && e.target.classList && e.target.classList.contains("filters-toggle")) {
      e.preventDefault();
      e.target.click();
    }
  });

  document.addEventListener("htmx:beforeSwap", function () {
    var el = document.activeElement;
    refocus = null;
    if (el && el.type === "checkbox" && el.form && el.form.classList.contains("facet-form")) {
      refocus = {name: el.name, value: el.value};
    }
  });
  // After app.js's own settling (which focuses #main when focus was lost).
  document.addEventListener("htmx:afterSettle", function () {
    render();
    if (!refocus) { return; }
    var want = refocus;
    refocus = null;
    var boxes = document.querySelectorAll(".facet-form input[type=checkbox]");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].name === want.name && boxes[i].value === want.value) {
        boxes[i].focus();
        return;
      }
    }
  });
  // Back and forward show the page as it was loaded: the filters folded.
  document.addEventListener("htmx:historyRestore", function () { setOpen(false); });

  // A page opened at #filters (a shared link, or the link followed before this ran).
  open = location.hash === "#filters";
  render();
})();
