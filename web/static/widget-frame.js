/*
 * The widget frame's side of embed.js's panel (web/widget.py puts it into the frame's <head>):
 * "ready" as soon as the page is parsed, focus requests from embed.js, Shift+Tab out of the
 * first control and Escape. Only fixed words cross the frame, nothing of the chat.
 */
(function () {
  if (window.parent === window) return;
  function tell(word) { window.parent.postMessage({crampbot: word}, "*"); }
  function controls() {
    var found = document.querySelectorAll('button, [href], input, textarea, select, summary, [tabindex]:not([tabindex="-1"])');
    return Array.prototype.filter.call(found, function (el) {
      return !el.disabled && el.getClientRects().length > 0 && el.tabIndex >= 0;
    });
  }
  function focusWhenThere(pick, triesLeft) {
    var target = pick(controls());
    if (target) { target.focus(); return; }
    if (triesLeft > 0) setTimeout(function () { focusWhenThere(pick, triesLeft - 1); }, 100);
  }
  var pickers = {
    "focus-box": function (items) {
      var box = document.querySelector("#crampbot-message textarea");
      return box && !box.disabled ? box : null;
    },
    "focus-first": function (items) { return items[0]; },
    "focus-last": function (items) { return items[items.length - 1]; }
  };
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { tell("close"); return; }
    if (event.key === "Tab" && event.shiftKey && document.activeElement === controls()[0]) {
      event.preventDefault();
      tell("focus-launcher");
    }
  });
  window.addEventListener("message", function (event) {
    var word = event.source === window.parent && event.data && event.data.crampbot;
    if (pickers.hasOwnProperty(word)) focusWhenThere(pickers[word], 100);
  });
  tell("ready");
})();
