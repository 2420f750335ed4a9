// The moderation queue by keyboard, on top of buttons that work without it:
// j and k move between rows, and each decision's key (a, r, s) presses that
// button on the row that has the focus. After a decision the page comes back
// with the next row named in its fragment, and that row takes the focus.
(function () {
  "use strict";

  var MOVES = { j: 1, k: -1 };

  function groups() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-decisions]"));
  }

  function typing(element) {
    if (!element || element === document.body) {
      return false;
    }
    var tag = element.tagName;
    return (
      tag === "INPUT" ||
      tag === "TEXTAREA" ||
      tag === "SELECT" ||
      element.isContentEditable
    );
  }

  function indexOfFocus(list) {
    var active = document.activeElement;
    for (var i = 0; i < list.length; i += 1) {
      if (list[i].contains(active)) {
        return i;
      }
    }
    return -1;
  }

  // The focused row is marked too, so it shows whichever way the focus came.
  function mark(group) {
    document.querySelectorAll("tr.is-current").forEach(function (row) {
      row.classList.remove("is-current");
    });
    var row = group.closest("tr");
    if (row) {
      row.classList.add("is-current");
    }
  }

  function select(group) {
    mark(group);
    group.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = groups();
    if (!list.length) {
      return;
    }
    document.querySelectorAll("[data-decision-keys]").forEach(function (hint) {
      hint.hidden = false;
    });
    document.querySelectorAll("button[data-decision-key]").forEach(function (button) {
      button.setAttribute("aria-keyshortcuts", button.getAttribute("data-decision-key"));
    });

    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.hasAttribute("data-decisions")) {
      select(target);
    }

    document.addEventListener("focusin", function (event) {
      var group = event.target.closest && event.target.closest("[data-decisions]");
      if (group) {
        mark(group);
      }
    });

    var sent = false;
    document.addEventListener("keydown", function (event) {
      if (sent || event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) {
        return;
      }
      if (typing(event.target)) {
        return;
      }
      var rows = groups();
      var index = indexOfFocus(rows);
      if (Object.prototype.hasOwnProperty.call(MOVES, event.key)) {
        var next = index < 0 ? 0 : Math.min(Math.max(index + MOVES[event.key], 0), rows.length - 1);
        event.preventDefault();
        select(rows[next]);
        return;
      }
      if (index < 0) {
        return;
      }
      var button = rows[index].querySelector('button[data-decision-key="' + event.key + '"]');
      if (button) {
        event.preventDefault();
        sent = true;
        button.form.requestSubmit(button);
      }
    });
  });
})();
