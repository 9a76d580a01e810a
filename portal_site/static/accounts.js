// Registration forms: show the OperatorID (characters 9–17 of the credit code) as it is typed.
document.addEventListener("input", (ev) => {
  const el = ev.target;
  if (!(el instanceof HTMLInputElement) || !el.dataset.operatorIdTarget) return;
  const code = el.value.replace(/\s+/g, "").toUpperCase();
  const out = document.getElementById(el.dataset.operatorIdTarget);
  if (out) out.value = code.length >= 17 ? code.slice(8, 17) : "";
});
