// Typeset the math that pymdownx.arithmatex (generic mode) leaves in <span|div class="arithmatex">, with the
// KaTeX bundled under docs/assets/katex: no CDN, so the site reads the same offline.
(function () {
  "use strict";
  function render() {
    var options = {
      delimiters: [
        { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false },
        { left: "$$", right: "$$", display: true }
      ],
      throwOnError: false,
      errorCallback: function (msg, err) { console.error("KaTeX: " + msg + " " + err); }
    };
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, options);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
