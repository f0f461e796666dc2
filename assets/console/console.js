// The console's own script: small enhancements on top of pages that work without it. No inline
// handlers (the CSP refuses them): behaviour hangs on data- attributes.
"use strict";

// <button data-copy="text"> copies its text and says so, for screen readers too.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  event.preventDefault();
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const status = document.getElementById(button.getAttribute("aria-controls") || "");
    const label = button.dataset.copiedLabel || "Copied";
    if (status) {
      status.textContent = label;
    } else {
      const before = button.textContent;
      button.textContent = label;
      setTimeout(() => { button.textContent = before; }, 2000);
    }
  });
});

// After htmx swaps content in, move focus to the first element that asks for it, so keyboard
// and screen-reader users land where the change happened.
document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail && event.detail.elt;
  const focus = target && target.querySelector && target.querySelector("[data-autofocus]");
  if (focus) focus.focus();
});

/* dashboards */
// <ul data-live-src="…"> listens to the live feed there: each event's data is an <li> made
// (and escaped) by the server, put at the top; the list keeps the newest 50.
(() => {
  const list = document.querySelector("[data-live-src]");
  if (!list || !window.EventSource) return;
  const source = new EventSource(list.dataset.liveSrc);
  const add = (event) => {
    const empty = list.querySelector("[data-empty]");
    if (empty) empty.remove();
    list.insertAdjacentHTML("afterbegin", event.data);
    while (list.children.length > 50) list.lastElementChild.remove();
  };
  source.addEventListener("visit", add);
  source.addEventListener("missed", add);
})();
