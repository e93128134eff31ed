// The template editor's small helpers; the form works without them.
// - the preview frame refreshes (the "Preview" button's submit) a moment after typing stops;
// - "Insert" puts a variable at the cursor of the field last focused;
// - of the two HTML bodies (Markdown, raw HTML) only the one the radio picks is shown (without this
//   script both are, and the radio still decides which one is used).
(function () {
  "use strict";
  var form = document.getElementById("editor-form");
  var button = document.getElementById("preview-button");
  if (!form || !button) { return; }
  var last = document.getElementById("body_txt");
  var timer = null;
  form.addEventListener("focusin", function (e) {
    if (e.target.matches("textarea, input[type=text]")) { last = e.target; }
  });
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { form.requestSubmit(button); }, 600);
  });
  var parts = form.querySelectorAll(".mode-part");
  function showMode() {
    var chosen = form.querySelector("input[name=mode]:checked");
    if (!chosen) { return; }
    parts.forEach(function (part) { part.hidden = part.getAttribute("data-mode") !== chosen.value; });
  }
  form.querySelectorAll("input[name=mode]").forEach(function (r) { r.addEventListener("change", showMode); });
  showMode();
  document.querySelectorAll("button.insert").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      if (!last) { return; }
      var text = b.getAttribute("data-insert");
      var start = last.selectionStart || 0, end = last.selectionEnd || 0;
      last.value = last.value.slice(0, start) + text + last.value.slice(end);
      last.focus();
      last.selectionStart = last.selectionEnd = start + text.length;
      last.dispatchEvent(new Event("input", {bubbles: true}));
    });
  });
})();
