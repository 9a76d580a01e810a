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
  // "+ add another facility": clone the last row in place (the link reloads with one more row without JS)
  var add = document.getElementById('add-row');
  var rows = document.getElementById('rows');
  if (add && rows) {
    add.addEventListener('click', function (e) {
      var last = rows.querySelector('fieldset.facility-row:last-of-type');
      if (!last) return;
      e.preventDefault();
      var i = rows.querySelectorAll('fieldset.facility-row').length;
      var row = last.cloneNode(true);
      row.setAttribute('data-row', String(i));
      row.querySelector('legend').textContent = row.querySelector('legend').textContent.replace(/\d+\s*$/, String(i + 1));
      row.querySelectorAll('[name], [id], label[for]').forEach(function (el) {
        ['name', 'id', 'for'].forEach(function (a) {
          var v = el.getAttribute(a);
          if (v) el.setAttribute(a, v.replace(/^rows-\d+-/, 'rows-' + i + '-'));
        });
        if (el.matches('input, textarea')) el.value = '';
        if (el.matches('select') && !/report_archive_pk$/.test(el.name)) el.selectedIndex = 0;
      });
      row.querySelectorAll('.has-error').forEach(function (el) { el.classList.remove('has-error'); });
      row.querySelectorAll('small.error').forEach(function (el) { el.remove(); });
      rows.appendChild(row);
    });
  }
  document.querySelectorAll('a[data-prompt]').forEach(function (a) {
    a.addEventListener('click', function (e) { if (!window.confirm(a.getAttribute('data-prompt'))) e.preventDefault(); });
  });
})();
