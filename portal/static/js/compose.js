// Compose: show only the recipient input for the chosen kind, and pick accounts by search.
//
// Without script every input shows and the account is typed as an address;
// the server accepts either. The account input becomes a combobox (the ARIA
// pattern with a listbox popup): typing asks the staff-only endpoint in the
// form's data-accounts-url for matching accounts; arrows move, Enter picks,
// Escape closes. A picked account fills the hidden account_id field, which
// typing again clears.
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  if (!form) {
    return;
  }

  // -- one recipient input at a time ---------------------------------------

  var radios = form.querySelectorAll('input[name="audience"]');
  var groups = form.querySelectorAll(".compose-recipient");

  function chosen() {
    for (var i = 0; i < radios.length; i += 1) {
      if (radios[i].checked) {
        return radios[i].value;
      }
    }
    return radios.length ? radios[0].value : "";
  }

  function showChosen() {
    var audience = chosen();
    for (var i = 0; i < groups.length; i += 1) {
      groups[i].hidden = groups[i].getAttribute("data-audience") !== audience;
    }
  }

  for (var r = 0; r < radios.length; r += 1) {
    radios[r].addEventListener("change", showChosen);
  }
  showChosen();

  // -- the account picker ----------------------------------------------------

  var input = document.getElementById("account");
  var list = document.getElementById("account-options");
  var picked = document.getElementById("account_id");
  var status = document.getElementById("account-status");
  var url = form.getAttribute("data-accounts-url");
  if (!input || !list || !picked || !url || !window.fetch) {
    return;
  }

  var options = [];
  var active = -1;
  var timer = null;
  var asked = 0;

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    var items = list.children;
    for (var i = 0; i < items.length; i += 1) {
      items[i].setAttribute("aria-selected", i === index ? "true" : "false");
      items[i].classList.toggle("active", i === index);
    }
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", items[index].id);
      items[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function pick(index) {
    var account = options[index];
    if (!account) {
      return;
    }
    input.value = account.text;
    picked.value = String(account.id);
    status.textContent = account.text;
    close();
  }

  function show(found) {
    options = found;
    list.textContent = "";
    found.forEach(function (account, index) {
      var item = document.createElement("li");
      item.id = "account-option-" + account.id;
      item.className = "list-group-item list-group-item-action";
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.textContent = account.text;
      // mousedown, not click: the input keeps its focus.
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        pick(index);
      });
      list.appendChild(item);
    });
    list.hidden = found.length === 0;
    input.setAttribute("aria-expanded", found.length ? "true" : "false");
    active = -1;
    // The words come translated from the page.
    var words = found.length === 1 ? "one" : found.length ? "many" : "none";
    status.textContent = status.getAttribute("data-" + words).replace("{count}", found.length);
  }

  function ask() {
    var phrase = input.value.trim();
    var mine = (asked += 1);
    if (phrase.length < 2) {
      show([]);
      status.textContent = "";
      return;
    }
    window
      .fetch(url + "?q=" + encodeURIComponent(phrase), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then(function (response) {
        return response.ok ? response.json() : [];
      })
      .then(function (found) {
        if (mine === asked) {
          show(found);
        }
      })
      .catch(function () {
        close();
      });
  }

  input.addEventListener("input", function () {
    picked.value = "";
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 200);
  });

  input.addEventListener("keydown", function (event) {
    var open = !list.hidden && options.length > 0;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (!open) {
        ask();
      } else {
        highlight(Math.min(active + 1, options.length - 1));
      }
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      close();
    }
  });

  input.addEventListener("blur", close);
})();
