/*
 * crampbot chat page behaviour, for the full page and the widget alike (web/chat.py puts this
 * script into the page's <head> through a gr.HTML component). It only reads and moves what
 * Gradio rendered: where the reader looks, where the keyboard goes, and names for screen
 * readers. The conversation itself stays in Gradio's events (web/chat.py).
 *
 *   - When an answer finishes, its first line is scrolled into view (the chat would otherwise
 *     sit at its bottom: the last source card and the disclaimer). While a draft streams, the
 *     chat follows it only if the reader is at the bottom already.
 *   - The message box stays usable while an answer is written: a question sent meanwhile waits
 *     in the box, a line under it says so, and it is sent when the answer is finished (the
 *     server answers one question of a conversation at a time). After an answer the keyboard
 *     focus is back in the box. What is typed before the page's reply to a send has emptied the
 *     box stays in it, and a held question that is empty is not sent.
 *   - The example questions are a labelled group of buttons, not a list without items, and
 *     messages are read as their text, not as the HTML source Gradio puts in their names.
 */
(function () {
  "use strict";
  if (window.__crampbotChat) return;
  window.__crampbotChat = true;

  var allLabels = /*@labels*/{};  // by language; web/chat.py fills them in
  // The language web/chat.py chose on load (data-lang, settings.web.lang, the browser), else
  // the one Gradio put on <html>.
  function labels() {
    var root = document.documentElement;
    var lang = (root.dataset.crampbotLang || root.lang || "en").toLowerCase().split("-")[0];
    return allLabels[lang] || allLabels.en || {};
  }
  var CHAT = "#crampbot-chat";
  var BOX = "#crampbot-message textarea";
  var NEW_CONVERSATION = "#crampbot-new-conversation, #crampbot-chat button[aria-label=Clear], #crampbot-chat button[title=Clear]";
  var FINISHED = ".cb-answer:not(.cb-draft)";
  var NEAR_BOTTOM_PX = 48;
  var following = true;  // the reader is at the bottom of the chat
  var shownAnswers = 0;  // answers whose start was already brought into view
  var userMessages = 0;
  var awaitingReply = false;  // a question was sent and its answer has not finished yet
  var waiting = false;        // a further question waits in the box
  // The text of the last send, until the page's reply to it (web/chat.py `ask`, some 100 ms
  // later) has emptied the box; null when no such reply is awaited.
  var sentText = null;

  function scroller(element) {
    for (var node = element; node && node !== document.body; node = node.parentElement) {
      var overflow = getComputedStyle(node).overflowY;
      if ((overflow === "auto" || overflow === "scroll") && node.scrollHeight > node.clientHeight)
        return node;
    }
    return null;
  }

  function atBottom(node) {
    return node.scrollHeight - node.scrollTop - node.clientHeight < NEAR_BOTTOM_PX;
  }

  function showStart(message) {
    var box = scroller(message);
    if (box) {
      var offset = message.getBoundingClientRect().top - box.getBoundingClientRect().top;
      box.scrollTop += offset - 8;
    }
    // On a phone the page itself may scroll too: keep the answer's top on the screen.
    var top = message.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 48) window.scrollBy(0, top - 8);
    following = box ? atBottom(box) : true;
  }

  function followDraft(message) {
    var box = scroller(message);
    if (box && following) box.scrollTop = box.scrollHeight;
  }

  function onChatChanged() {
    var chat = document.querySelector(CHAT);
    if (!chat) return;
    nameExamples(chat);
    unnameMessages(chat);
    var users = chat.querySelectorAll("[data-testid=user]");
    if (users.length > userMessages) following = true;  // the reader just asked: show it
    userMessages = users.length;
    var replies = chat.querySelectorAll("[data-testid=bot]");
    if (replies.length < shownAnswers) shownAnswers = 0;  // a new conversation
    var last = replies[replies.length - 1];
    if (!last) return;
    var finished = last.querySelector(FINISHED) !== null;
    if (finished && replies.length > shownAnswers) {
      shownAnswers = replies.length;
      showStart(last);
      onAnswerFinished();
    } else if (!finished) {
      followDraft(last);
    }
  }

  // Gradio names each message "bot's message: " + its HTML source; a screen reader would read
  // out the tags. Without the name the message's own text is read.
  function unnameMessages(chat) {
    chat.querySelectorAll("[data-testid=bot][aria-label], [data-testid=user][aria-label]")
      .forEach(function (message) {
        if (message.getAttribute("aria-label").indexOf("<") >= 0)
          message.removeAttribute("aria-label");
      });
  }

  function nameExamples(chat) {
    // Named again on every change: the page's language is told after the first one.
    chat.querySelectorAll("[role=list], [data-cb-examples]").forEach(function (list) {
      if (list.querySelector("[role=listitem], li")) return;
      list.setAttribute("role", "group");
      list.setAttribute("data-cb-examples", "");
      var name = labels().examples;
      if (name && list.getAttribute("aria-label") !== name) list.setAttribute("aria-label", name);
    });
  }

  function answering() {
    var chat = document.querySelector(CHAT);
    if (!chat) return false;
    var messages = chat.querySelectorAll("[data-testid=user], [data-testid=bot]");
    var last = messages[messages.length - 1];
    if (!last) return awaitingReply;
    if (last.matches("[data-testid=user]")) return true;
    return awaitingReply || last.querySelector(FINISHED) === null;
  }

  function waitingNote() {
    return document.getElementById("crampbot-waiting");  // web/chat.py renders it, empty
  }

  function setWaiting(value) {
    waiting = value;
    var note = waitingNote();
    if (!note) return;
    note.textContent = value ? labels().waiting : "";
    note.hidden = !value;
  }

  // Gradio empties the box by writing its value; the visitor's typing does not. So when the
  // reply to a send empties the box, only the text that was sent goes: what the visitor typed
  // since stays (Gradio is then told the box's text, as if typed).
  function keepTypingOnClear(box) {
    sentText = box.value;
    if (box.__crampbotKeepsTyping) return;
    box.__crampbotKeepsTyping = true;
    var value = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value");
    Object.defineProperty(box, "value", {
      configurable: true,
      get: function () { return value.get.call(this); },
      set: function (text) {
        var sent = sentText, shown = value.get.call(this);
        if (sent !== null && text === "") {
          sentText = null;  // the reply to the send is here
          var typed = shown.indexOf(sent) === 0 ? shown.slice(sent.length) : shown;
          if (typed.trim()) {
            value.set.call(this, typed);
            setTimeout(function () { box.dispatchEvent(new Event("input", { bubbles: true })); }, 0);
            return;
          }
        }
        value.set.call(this, text);
      }
    });
  }

  // Before Gradio sees the Enter key or the send button: hold a question sent mid-answer.
  function onSend(event) {
    var box = document.querySelector(BOX);
    if (!box || !box.value.trim()) return;
    if (answering()) {
      event.preventDefault();
      event.stopImmediatePropagation();
      setWaiting(true);
      return;
    }
    awaitingReply = true;
    keepTypingOnClear(box);
  }

  function sendWaiting() {
    var box = document.querySelector(BOX);
    var button = document.querySelector("#crampbot-message button.submit-button");
    setWaiting(false);
    if (!box || !box.value.trim() || !button) return;  // nothing to ask any more
    awaitingReply = true;
    keepTypingOnClear(box);
    button.click();
  }

  function onAnswerFinished() {
    awaitingReply = false;
    var box = document.querySelector(BOX);
    // Focus fell to the page when an example button went away; give it back. A reader who
    // moved elsewhere keeps their place.
    var active = document.activeElement;
    var chat = document.querySelector(CHAT);
    if (box && (!active || active === document.body || (chat && chat.contains(active))))
      box.focus({ preventScroll: true });
    if (waiting) sendWaiting();
  }

  function watch() {
    var pending = false;
    new MutationObserver(function () {
      if (pending) return;
      pending = true;
      // After Gradio's own update of this frame, so the sizes measured are the new ones.
      requestAnimationFrame(function () { pending = false; onChatChanged(); });
    }).observe(document.body, {
      childList: true, subtree: true, characterData: true, attributes: true,
      attributeFilter: ["aria-label"]
    });
    document.addEventListener("scroll", function (event) {
      var chat = document.querySelector(CHAT);
      var target = event.target;
      if (chat && target.nodeType === 1 && chat.contains(target)) following = atBottom(target);
    }, true);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing
          && event.target.matches && event.target.matches(BOX)) onSend(event);
    }, true);
    document.addEventListener("click", function (event) {
      var target = event.target.closest && event.target.closest("#crampbot-message button.submit-button");
      if (target && event.isTrusted) onSend(event);
      // Starting over cancels the answer in progress (web/chat.py): nothing is awaited any more.
      if (event.target.closest && event.target.closest(NEW_CONVERSATION)) {
        awaitingReply = false;
        sentText = null;  // the new conversation's empty box is the visitor's wish
        setWaiting(false);
      }
    }, true);
    onChatChanged();
  }

  if (document.body) watch(); else document.addEventListener("DOMContentLoaded", watch);
})();
