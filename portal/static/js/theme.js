// Light or dark: the system's preference, unless the visitor chose with the toggle.
//
// Loaded in <head> (not deferred), so a stored choice applies before the first
// paint. The toggle is a button with aria-pressed ("Dark mode" on or off); it
// stays hidden without script, where the system's preference alone decides.
(function () {
  "use strict";

  var KEY = "portal-theme";
  var root = document.documentElement;
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (error) {
      return null; // storage blocked: follow the system
    }
  }

  function remember(value) {
    try {
      window.localStorage.setItem(KEY, value);
    } catch (error) {
      // Storage blocked: the choice lasts until the page is left.
    }
  }

  function isDark() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) {
      return chosen === "dark";
    }
    return Boolean(system && system.matches);
  }

  function show(toggles) {
    var dark = isDark();
    toggles.forEach(function (toggle) {
      toggle.setAttribute("aria-pressed", dark ? "true" : "false");
    });
  }

  var choice = stored();
  if (choice) {
    root.setAttribute("data-theme", choice);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggles = Array.prototype.slice.call(document.querySelectorAll("[data-theme-toggle]"));
    toggles.forEach(function (toggle) {
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        var next = isDark() ? "light" : "dark";
        root.setAttribute("data-theme", next);
        remember(next);
        show(toggles);
      });
    });
    show(toggles);
    if (system && system.addEventListener) {
      system.addEventListener("change", function () {
        show(toggles);
      });
    }
  });
})();
