// The program tab sets (sphinx-design, sync group "program"): with no choice stored yet, a wide
// screen opens "side by side"; a narrow one keeps the first tab. sphinx-design stores a choice
// in localStorage and restores it on every page, so the choice holds across pages.
document.addEventListener("DOMContentLoaded", () => {
  let stored = null;
  try {
    stored = window.localStorage.getItem("sphinx-design-tab-id-program");
  } catch (err) {
    stored = null;
  }
  if (stored || !window.matchMedia("(min-width: 1200px)").matches) return;
  document.querySelectorAll('.sd-tab-label[data-sync-group="program"][data-sync-id="both"]').forEach((label) => {
    const input = document.getElementById(label.getAttribute("for"));
    if (input) input.checked = true;
  });
});
