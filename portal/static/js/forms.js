// A form that came back with errors: move the focus to its error summary, so
// the reader hears what went wrong and can follow the links to each field.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) {
      return;
    }
    summary.focus();
    // A link in the summary puts the focus in its field, not only scrolls to it.
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var field = link && document.getElementById(link.getAttribute("href").slice(1));
      if (field) {
        event.preventDefault();
        field.focus();
        field.scrollIntoView({ block: "center" });
      }
    });
  });
})();
