// Archives list pages: "select all", batch buttons enabled only with a selection, and the
// reminder before adding facility archives. Everything works without it (the server checks).
(function () {
  function boxes(form) { return Array.prototype.slice.call(form.querySelectorAll('input[name=ids]')); }
  function refresh(form) {
    var n = boxes(form).filter(function (b) { return b.checked; }).length;
    form.querySelectorAll('[data-needs-selection]').forEach(function (btn) { btn.disabled = n === 0; });
    form.querySelectorAll('[data-selected-count]').forEach(function (el) { el.textContent = n ? ('已选 ' + n + ' / selected ' + n) : ''; });
  }
  document.querySelectorAll('#list-form').forEach(function (form) {
    var all = form.querySelector('[data-select-all]');
    if (all) all.addEventListener('change', function () { boxes(form).forEach(function (b) { b.checked = all.checked; }); refresh(form); });
    form.addEventListener('change', function () { refresh(form); });
    refresh(form);
  });
  document.querySelectorAll('a[data-prompt]').forEach(function (a) {
    a.addEventListener('click', function (e) { if (!window.confirm(a.getAttribute('data-prompt'))) e.preventDefault(); });
  });
})();
