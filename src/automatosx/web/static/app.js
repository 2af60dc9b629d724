// The dashboard's own script (no build step, no dependencies; htmx is vendored beside it).
// Loaded in <head> without defer so the saved theme applies before the first paint; the
// rest waits for the DOM. It does three things:
//  - the dark/light toggle, saved in localStorage (the system's preference otherwise);
//  - buttons with data-ax-post: POST to the API with fetch() (same-origin, so the browser
//    sends the Origin header the server checks), say the answer in the status region, and
//    ask the page's parts to refresh;
//  - an element with data-ax-stream: follow that execution's event stream (EventSource
//    resumes by itself with Last-Event-ID) and, on each event, dispatch "ax:changed" on
//    <body>, which the htmx parts listen to (hx-trigger="ax:changed from:body").
// The Content-Security-Policy forbids inline script and style: everything is here.
(function () {
  "use strict";

  var THEME_KEY = "ax-theme";
  var root = document.documentElement;

  function savedTheme() {
    try {
      var value = window.localStorage.getItem(THEME_KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (e) {
      return null; // storage disabled: follow the system
    }
  }

  function systemTheme() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark"
      : "light";
  }

  var initial = savedTheme();
  if (initial) {
    root.setAttribute("data-theme", initial);
  }

  function currentTheme() {
    return root.getAttribute("data-theme") || systemTheme();
  }

  function showTheme(button) {
    var dark = currentTheme() === "dark";
    button.setAttribute("aria-pressed", dark ? "true" : "false");
    button.textContent = dark ? "Light mode" : "Dark mode";
  }

  function setUpThemeToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) {
      return;
    }
    button.hidden = false;
    showTheme(button);
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try {
        window.localStorage.setItem(THEME_KEY, next);
      } catch (e) {
        // not saved: it still applies to this page
      }
      showTheme(button);
    });
  }

  function announce(text, failed) {
    var region = document.getElementById("ax-status");
    if (!region) {
      return;
    }
    region.textContent = text;
    region.classList.toggle("failed", Boolean(failed));
    region.classList.add("shown");
    window.clearTimeout(announce.timer);
    announce.timer = window.setTimeout(function () {
      region.classList.remove("shown");
    }, 6000);
  }

  // Many events arrive together (a step's end and the next one's start): one refresh
  // for a burst, at most one every REFRESH_MS.
  var REFRESH_MS = 250;
  var refreshTimer = null;

  function changed() {
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      document.body.dispatchEvent(new CustomEvent("ax:changed"));
    }, REFRESH_MS);
  }

  function post(button) {
    var body = null;
    var commentId = button.getAttribute("data-ax-comment");
    if (commentId) {
      var input = document.getElementById(commentId);
      if (input && input.value.trim()) {
        body = JSON.stringify({ comment: input.value });
      }
    }
    var label = button.getAttribute("data-ax-label") || "Done";
    button.disabled = true;
    var headers = body ? { "Content-Type": "application/json" } : {};
    fetch(button.getAttribute("data-ax-post"), {
      method: "POST",
      headers: headers,
      body: body,
      credentials: "same-origin",
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return { error: response.statusText };
          })
          .then(function (answer) {
            if (response.ok) {
              announce(label + ": the execution is " + answer.state + ".", false);
            } else {
              announce("Refused (" + response.status + "): " + answer.error, true);
            }
          });
      })
      .catch(function () {
        announce("The server did not answer.", true);
      })
      .then(function () {
        button.disabled = false;
        changed();
      });
  }

  function follow(url) {
    if (!window.EventSource) {
      return;
    }
    var source = new EventSource(url);
    source.onmessage = changed;
    source.addEventListener("end", function () {
      source.close();
      changed();
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpThemeToggle();
    document.addEventListener("click", function (event) {
      var target = event.target instanceof Element ? event.target : null;
      var button = target ? target.closest("button[data-ax-post]") : null;
      if (button && !button.disabled) {
        event.preventDefault();
        post(button);
      }
    });
    var live = document.querySelector("[data-ax-stream]");
    if (live) {
      follow(live.getAttribute("data-ax-stream"));
    }
  });
})();
