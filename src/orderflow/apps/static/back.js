// An error page's "Go back": the previous page, as the browser's own button would show it.
// A file, not a `javascript:` link: the CSP (kit/security.py) runs no inline script.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const link = event.target.closest("[data-back]");
    if (link && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
})();
