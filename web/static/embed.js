/*
 * crampbot embed script: one <script> tag adds a floating chat button that opens the clinic's
 * assistant in a frame.
 *
 *   <script src="https://OUR-HOST/embed.js" defer
 *           data-label="Questions about leg cramps?" data-color="#0f766e"
 *           data-position="right" data-open="false" data-lang="ru"></script>
 *
 * Every data-* attribute is optional; the defaults come from the server's settings. data-lang
 * sets the widget's language (else settings.web.lang, else the visitor's browser language). The frame
 * loads only when the button is first pressed, so the clinic's page stays as fast as before.
 * The button lives in a shadow root, so the page's CSS and ours cannot affect each other.
 * window.CrampbotWidget.open() / .close() / .toggle() let the page drive it.
 *
 * The open panel is a dialog: the keyboard moves between the frame and the close button only,
 * Escape closes it and puts the focus back on the button. A frame that never says "ready" (the
 * browser refused to show it: this site is not in the clinic's allowed origins) is replaced by
 * a sentence saying so, instead of the browser's broken-page icon.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.CrampbotWidget) return;

  var defaults = /*@defaults*/{};
  var data = script.dataset;
  var colourPattern = /^#[0-9a-fA-F]{6}$/;
  var colour = colourPattern.test(data.color || "") ? data.color : (defaults.color || "#0f766e");
  var textColour = colourPattern.test(data.textColor || "") ? data.textColor
    : (defaults.textColor || "#ffffff");
  var allWords = defaults.words || {};
  function known(tag) {
    var base = String(tag || "").toLowerCase().split("-")[0];
    return allWords.hasOwnProperty(base) ? base : "";
  }
  var lang = known(data.lang) || known(defaults.lang) || known(navigator.language) || "en";
  var words = allWords[lang] || {};
  var label = data.label || defaults.label || words.label || "Questions?";
  var title = data.title || defaults.title || "Chat";
  var side = data.position === "left" ? "left" : "right";
  var widget = new URL(defaults.path || "widget/", script.src);
  // Only a language the page asked for is sent; otherwise the frame follows the browser itself.
  if (known(data.lang)) widget.searchParams.set("lang", known(data.lang));
  var widgetUrl = widget.href;
  var widgetOrigin = widget.origin;
  var notEnabled = words.notEnabled || "This assistant is not enabled for this website.";
  var closeWord = words.close || "Close";
  var READY_AFTER_LOAD_MS = 1500;  // "ready" is sent while the frame's page is parsed
  var READY_AT_ALL_MS = 20000;     // a frame that does not even load

  var CHAT_ICON = '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">' +
    '<path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1' +
    '-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1' +
    ' 0 0 .01z"/></svg>';
  var CLOSE_ICON = '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">' +
    '<path fill="currentColor" d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 ' +
    '6.4 19 5 17.6 10.6 12 5 6.4z"/></svg>';

  var STYLE = [
    ":host { all: initial; }",
    ".launcher { position: fixed; bottom: 20px; SIDE: 20px; z-index: 2147483000;",
    "  display: flex; align-items: center; gap: 10px; padding: 0 20px 0 16px; height: 54px;",
    "  border: 0; border-radius: 27px; cursor: pointer; background: COLOUR; color: TEXT;",
    "  font: 600 15px/1 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;",
    "  box-shadow: 0 6px 20px rgba(0,0,0,.22); transition: transform .15s ease; }",
    ".launcher:hover { transform: translateY(-2px); }",
    ".launcher:focus-visible { outline: 3px solid COLOUR; outline-offset: 3px; }",
    ".launcher.open { width: 54px; padding: 0; justify-content: center; }",
    ".launcher.open .text { display: none; }",
    ".panel { position: fixed; bottom: 88px; SIDE: 20px; z-index: 2147483000;",
    "  width: 400px; height: min(660px, calc(100vh - 112px)); border-radius: 16px;",
    "  overflow: hidden; background: #fff; box-shadow: 0 12px 48px rgba(0,0,0,.28);",
    "  display: none; }",
    ".panel.open { display: block; }",
    ".panel iframe { width: 100%; height: 100%; border: 0; display: block; }",
    ".panel.refused iframe { display: none; }",
    ".notice { display: none; box-sizing: border-box; height: 100%; padding: 32px 24px;",
    "  align-items: center; justify-content: center; text-align: center; color: #1f2937;",
    "  font: 400 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }",
    ".panel.refused .notice { display: flex; }",
    "@media (max-width: 480px) {",
    /* The whole screen, the launcher (now the close button) on a white strip below the frame:
       no slice of the page shows around it. */
    "  .panel { top: 0; left: 0; right: 0; bottom: 0; width: auto; height: auto;",
    "    padding-bottom: 76px; border-radius: 0; }",
    "  .launcher { bottom: 12px; SIDE: 12px; }",
    "}"
  ].join("\n").replace(/SIDE/g, side).replace(/COLOUR/g, colour).replace(/TEXT/g, textColour);

  var host = document.createElement("div");
  host.id = "crampbot-widget";
  host.lang = lang;
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = STYLE;

  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "launcher";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "crampbot-panel");
  var text = document.createElement("span");
  text.className = "text";
  text.textContent = label;  // text, never HTML: the label comes from the page or settings

  var panel = document.createElement("div");
  panel.className = "panel";
  panel.id = "crampbot-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);

  var notice = document.createElement("p");
  notice.className = "notice";
  notice.setAttribute("role", "alert");
  notice.textContent = notEnabled;
  var frame = null;
  var ready = false;
  var focusOnReady = false;  // opened by the visitor (not by data-open on load): focus the box

  function showIcon(open) {
    launcher.innerHTML = open ? CLOSE_ICON : CHAT_ICON;  // fixed markup from this file only
    launcher.appendChild(text);
    launcher.setAttribute("aria-label", open ? closeWord + " " + title : label);
  }

  function refuseUnlessReady() {
    if (!ready) panel.classList.add("refused");
  }

  function tellFrame(word) {
    if (frame && ready) {
      frame.focus();
      frame.contentWindow.postMessage({ crampbot: word }, widgetOrigin);
    }
  }

  function open(options) {
    var takeFocus = !(options && options.focus === false);
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = widgetUrl;
      frame.title = title;
      frame.setAttribute("referrerpolicy", "strict-origin");
      frame.addEventListener("load", function () {
        setTimeout(refuseUnlessReady, READY_AFTER_LOAD_MS);
      });
      setTimeout(refuseUnlessReady, READY_AT_ALL_MS);
      panel.appendChild(frame);
      panel.appendChild(notice);
    }
    panel.classList.add("open");
    launcher.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    showIcon(true);
    focusOnReady = takeFocus;
    if (takeFocus) tellFrame("focus-box");
  }

  function close() {
    panel.classList.remove("open");
    launcher.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    showIcon(false);
  }

  function isOpen() {
    return panel.classList.contains("open");
  }

  function toggle() {
    if (isOpen()) close(); else open();
  }

  launcher.addEventListener("click", function () { toggle(); });
  // The launcher is the dialog's last control: Tab from it goes back into the frame.
  launcher.addEventListener("keydown", function (event) {
    if (event.key !== "Tab" || !isOpen() || !ready || panel.classList.contains("refused")) return;
    event.preventDefault();
    tellFrame(event.shiftKey ? "focus-last" : "focus-first");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen()) {
      close();
      launcher.focus();
    }
  });
  // The frame's words (web/widget.py, WIDGET_HEAD): ready, close (Escape inside the widget),
  // focus-launcher (Shift+Tab on its first control).
  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow) return;
    if (event.origin !== widgetOrigin) return;
    var word = event.data && event.data.crampbot;
    if (word === "ready") {
      ready = true;
      panel.classList.remove("refused");
      if (isOpen() && focusOnReady) tellFrame("focus-box");
    } else if (word === "close") {
      close();
      launcher.focus();
    } else if (word === "focus-launcher") {
      launcher.focus();
    }
  });
  showIcon(false);
  root.appendChild(style);
  root.appendChild(panel);
  root.appendChild(launcher);

  function mount() {
    document.body.appendChild(host);
    if (data.open === "true") open({ focus: false });  // the page's own focus stays put
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.CrampbotWidget = { open: open, close: close, toggle: toggle };
})();
