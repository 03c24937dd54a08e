// Run once the page and Material's own scripts are done (it wraps wide tables when it starts).
window.addEventListener("load", () => {
  // Material's search overlay is a dialog without a name: a screen reader announces it as "Search".
  for (const dialog of document.querySelectorAll('.md-search[role="dialog"]:not([aria-label])')) {
    dialog.setAttribute("aria-label", "Search");
  }
  // A table wider than the page scrolls in its wrapper: a keyboard reaches it (tabindex) to scroll it too.
  for (const wrapper of document.querySelectorAll(".md-typeset__scrollwrap")) {
    if (wrapper.scrollWidth > wrapper.clientWidth) wrapper.tabIndex = 0;
  }
});
