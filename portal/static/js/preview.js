// The editor's live preview: the body as it will be published, beside the text.
// The server renders it with the function a save uses (POST /posts/preview/),
// so what shows here is what readers will see. Without script the region stays
// hidden and the Preview button renders the body on the server instead.
(function () {
  "use strict";

  // Wait this long after the last keystroke: one request per pause, not per key.
  var DELAY = 500;

  document.addEventListener("DOMContentLoaded", function () {
    var region = document.querySelector("[data-live-preview]");
    var form = region && region.closest("form");
    var body = form && form.querySelector("textarea[name='body']");
    var token = form && form.querySelector("input[name='csrf_token']");
    var output = region && region.querySelector("[data-live-preview-output]");
    if (!body || !token || !output || !window.fetch || !window.URLSearchParams) {
      return;
    }
    var timer = null;
    var shown = null; // the text the preview shows
    var latest = 0; // the newest request: an older answer arriving late is dropped

    function unavailable() {
      var message = document.createElement("p");
      message.className = "hint";
      message.textContent = region.getAttribute("data-preview-unavailable");
      output.replaceChildren(message);
      shown = null; // try again on the next change
    }

    function update() {
      var text = body.value;
      if (text === shown) {
        return;
      }
      shown = text;
      var ticket = ++latest;
      var data = new URLSearchParams();
      data.append("csrf_token", token.value);
      data.append("body", text);
      fetch(region.getAttribute("data-preview-url"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        // A sign-in page is no preview: a redirect (the session ended) fails.
        redirect: "error",
        headers: { Accept: "text/html" },
      })
        .then(function (response) {
          // 422: a body a save would refuse; the answer says why.
          if (!response.ok && response.status !== 422) {
            throw new Error("preview: HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          if (ticket === latest) {
            // Rendered and sanitised by the server, as a published post is.
            output.innerHTML = html;
          }
        })
        .catch(function () {
          if (ticket === latest) {
            unavailable();
          }
        });
    }

    body.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, DELAY);
    });
    region.hidden = false;
    if (body.value.trim()) {
      update();
    } else {
      shown = body.value;
    }
  });
})();
