// Copy buttons: a button with data-copy="ID" copies the text of element ID.
// Everything works without this file; it only saves selecting the text.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b || !navigator.clipboard) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  navigator.clipboard.writeText(el.textContent).then(function () {
    b.textContent = "Copied";
    var l = b.getAttribute("aria-label");
    if (l) b.setAttribute("aria-label", l.replace(/^Copy/, "Copied"));
  });
});
document.querySelectorAll("button[data-copy]").forEach(function (b) { b.hidden = false; });
