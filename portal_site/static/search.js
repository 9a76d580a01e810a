/* zhcharge map search panel (mission P3 simple search, P4 advanced search).
 *
 * Renders into <aside id="search-panel"> on /map and talks to the open API (/api/v1/stations):
 * - a search box (station name, operator or address; Chinese, pinyin or initials);
 * - an advanced panel with every dimension as multi-select chips showing facet counts (each count
 *   applies the other dimensions' choices, so adding a second operator shows what it adds),
 *   "select all" for the current dimension, "reset" for everything and a "search" button;
 * - a result list synced with the map: hover highlights the station, click flies to it and opens
 *   its popup; the map's tiles get the same filters through window.zhMap.setFilters();
 * - the list can be sorted (name or relevance by default, price now, power, free connectors) and
 *   limited to a price per kWh now (max_price) and to a 30-day uptime (min_uptime); each item shows its
 *   price now and its uptime; the list sorts by uptime too (most reliable first);
 * - the search is kept in the URL (history.replaceState), so it can be shared.
 * Loads its own stylesheet, so the page needs only the <script> line.
 */
(function () {
  'use strict';

  var panel = document.getElementById('search-panel');
  if (!panel) return;
  var cfgEl = document.getElementById('map-config');
  var cfg = cfgEl ? JSON.parse(cfgEl.textContent) : {};
  var EN = (cfg.lang || document.documentElement.lang) === 'en';
  var CRS = cfg.crs === 'gcj02' ? 'gcj02' : 'wgs84';
  var DIMS = ['operator', 'district', 'station_type', 'scale', 'facility_type', 'payment'];
  var PAGE = 50;

  var TEXT = {
    placeholder: ['搜索充电站名称、运营商或地址（支持拼音）', 'Station, operator or address (pinyin works)'],
    search: ['搜索', 'Search'], advanced: ['高级搜索', 'Advanced search'], reset: ['重置', 'Reset'],
    selectAll: ['全选', 'Select all'], clearDim: ['清除', 'Clear'],
    operator: ['运营商', 'Operator'], district: ['行政区', 'District'], station_type: ['站点类型', 'Station type'],
    scale: ['站点规模', 'Scale'], facility_type: ['设施类型', 'Facility type'], payment: ['支付方式', 'Payment'],
    total: ['共 {n} 个充电站', '{n} stations'], none: ['没有符合条件的充电站', 'No station matches'],
    more: ['加载更多', 'Load more'], loading: ['正在搜索…', 'Searching…'],
    failed: ['搜索失败，请稍后重试', 'Search failed; please retry'],
    limited: ['请求过于频繁，请稍后再试', 'Too many requests; please wait a moment'],
    free: ['空闲', 'free'], selected: ['已选 {n} 项', '{n} selected'], share: ['复制链接', 'Copy link'],
    copied: ['链接已复制', 'Link copied'],
    sortBy: ['排序', 'Sort'], sort_default: ['默认', 'Default'], sort_price: ['价格最低', 'Cheapest now'],
    sort_max_power: ['功率最高', 'Most powerful'], sort_free: ['空闲最多', 'Most free'],
    maxPrice: ['当前电价不超过', 'Price now at most'], perKwh: ['元/度', 'yuan/kWh'], kwhUnit: ['度', 'kWh'],
    noPrice: ['暂无价格', 'no price'],
    sort_uptime: ['最可靠', 'Most reliable'], minUptime: ['近30天可用率', 'Working in the last 30 days'],
    anyUptime: ['不限', 'any'], atLeast: ['≥ {n}%', '≥ {n} %'], uptimeShort: ['可用 {n}%', 'up {n} %']
  };
  var SORTS = ['', 'price', 'max_power', 'free', 'uptime'];
  var UPTIMES = ['', '0.9', '0.95', '0.97', '0.99'];
  function t(key, n) {
    var s = TEXT[key][EN ? 1 : 0];
    return n == null ? s : s.replace('{n}', String(n));
  }

  var link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/static/search.css';
  document.head.appendChild(link);

  /* --- state -------------------------------------------------------------------------------- */
  var state = {q: '', sel: {}, dim: 'operator', facets: null, items: [], total: 0, next: null, open: false,
               extra: new URLSearchParams(), sort: ''};
  DIMS.forEach(function (d) { state.sel[d] = []; });

  function readUrl() {
    var p = new URLSearchParams(window.location.search);
    state.q = p.get('q') || '';
    DIMS.forEach(function (d) {
      var vals = [];
      p.getAll(d).forEach(function (v) { v.split(',').forEach(function (x) { if (x && vals.indexOf(x) < 0) vals.push(x); }); });
      state.sel[d] = vals;
    });
    ['available', 'min_power', 'max_price', 'min_uptime', 'exclude_operator'].forEach(function (k) { if (p.get(k)) state.extra.set(k, p.get(k)); });
    state.sort = SORTS.indexOf(p.get('sort') || '') > 0 ? p.get('sort') : '';
    state.open = DIMS.some(function (d) { return state.sel[d].length; }) || !!state.extra.get('max_price') ||
      !!state.extra.get('min_uptime');
  }

  function filterQuery() {
    var p = new URLSearchParams();
    if (state.q.trim()) p.set('q', state.q.trim());
    DIMS.forEach(function (d) { if (state.sel[d].length) p.set(d, state.sel[d].join(',')); });
    state.extra.forEach(function (v, k) { p.set(k, v); });
    return p;
  }

  /* --- rendering ---------------------------------------------------------------------------- */
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  panel.innerHTML =
    '<form class="sp-box" role="search">' +
    '  <input type="search" id="sp-q" name="q" autocomplete="off" placeholder="' + esc(t('placeholder')) + '"' +
    '         aria-label="' + esc(t('placeholder')) + '">' +
    '  <button type="submit" class="btn sp-go" id="sp-search">' + esc(t('search')) + '</button>' +
    '</form>' +
    '<div class="sp-tools"><button type="button" class="link-button" id="sp-toggle" aria-expanded="false">' +
    esc(t('advanced')) + ' <span id="sp-selcount"></span></button>' +
    '<label class="sp-sort">' + esc(t('sortBy')) + ' <select id="sp-sort">' + SORTS.map(function (k) {
      return '<option value="' + k + '">' + esc(t('sort_' + (k || 'default'))) + '</option>';
    }).join('') + '</select></label>' +
    '<button type="button" class="link-button" id="sp-share">' + esc(t('share')) + '</button></div>' +
    '<div class="sp-adv" id="sp-adv" hidden>' +
    '  <div class="sp-tabs" role="tablist" id="sp-tabs"></div>' +
    '  <div class="sp-chips" id="sp-chips" role="group"></div>' +
    '  <label class="sp-price">' + esc(t('maxPrice')) + ' <input type="number" id="sp-max-price" min="0" max="100" ' +
    'step="0.05" inputmode="decimal"> ' + esc(t('perKwh')) + '</label>' +
    '  <label class="sp-price">' + esc(t('minUptime')) + ' <select id="sp-min-uptime">' + UPTIMES.map(function (v) {
      return '<option value="' + v + '">' + esc(v ? t('atLeast', Math.round(Number(v) * 100)) : t('anyUptime')) +
        '</option>';
    }).join('') + '</select></label>' +
    '  <div class="sp-actions">' +
    '    <button type="button" class="btn secondary" id="sp-all">' + esc(t('selectAll')) + '</button>' +
    '    <button type="button" class="btn secondary" id="sp-reset">' + esc(t('reset')) + '</button>' +
    '    <button type="button" class="btn" id="sp-apply">' + esc(t('search')) + '</button>' +
    '  </div>' +
    '</div>' +
    '<div class="sp-status" id="sp-status" role="status" aria-live="polite"></div>' +
    '<ol class="sp-results" id="sp-results"></ol>' +
    '<button type="button" class="btn secondary sp-more" id="sp-more" hidden>' + esc(t('more')) + '</button>';

  var $ = function (id) { return document.getElementById(id); };

  function renderTabs() {
    $('sp-tabs').innerHTML = DIMS.map(function (d) {
      var n = state.sel[d].length;
      return '<button type="button" role="tab" class="sp-tab" data-dim="' + d + '" aria-selected="' +
        (d === state.dim) + '">' + esc(t(d)) + (n ? ' <b>' + n + '</b>' : '') + '</button>';
    }).join('');
    var total = DIMS.reduce(function (a, d) { return a + state.sel[d].length; }, 0);
    $('sp-selcount').textContent = total ? '(' + t('selected', total) + ')' : '';
  }

  function facetValues(dim) {
    var list = (state.facets && state.facets[dim]) || [];
    var seen = {};
    list.forEach(function (fv) { seen[String(fv.value)] = true; });
    state.sel[dim].forEach(function (v) {  // a selected value the facets do not list (e.g. from a shared link)
      if (!seen[v]) list = list.concat([{value: v, label: v, label_en: v, count: 0}]);
    });
    return list;
  }

  function renderChips() {
    var dim = state.dim;
    var sel = state.sel[dim];
    var vals = facetValues(dim);
    $('sp-chips').setAttribute('aria-label', t(dim));
    $('sp-chips').innerHTML = vals.map(function (fv) {
      var v = String(fv.value);
      var on = sel.indexOf(v) >= 0;
      var label = EN ? fv.label_en : fv.label;
      return '<button type="button" class="chip' + (on ? ' on' : '') + (fv.count ? '' : ' zero') + '" data-value="' +
        esc(v) + '" aria-pressed="' + on + '" title="' + esc(EN ? fv.label : fv.label_en) + '">' + esc(label) +
        ' <span class="count">' + fv.count + '</span></button>';
    }).join('');
  }

  function renderList(append) {
    var ol = $('sp-results');
    var html = state.items.slice(append ? state.rendered : 0).map(function (it) {
      var pw = it.max_power_kw == null ? '' : Math.round(it.max_power_kw) + ' kW';
      var dist = it.distance_m == null ? '' : (it.distance_m >= 1000 ? (it.distance_m / 1000).toFixed(1) + ' km'
        : Math.round(it.distance_m) + ' m');
      var price = it.price_now == null ? '<span class="sp-noprice">' + esc(t('noPrice')) + '</span>'
        : '<span class="sp-price-now">¥' + esc(Number(it.price_now).toFixed(4).replace(/0{1,2}$/, '')) + '</span>' +
          '<span class="sp-unit">/' + esc(t('kwhUnit')) + '</span>';
      var rel = it.reliability && it.reliability.uptime_30d != null
        ? ' · <span class="sp-uptime">' + esc(t('uptimeShort', uptimePct(it.reliability.uptime_30d))) + '</span>' : '';
      return '<li class="sp-item" tabindex="0" data-id="' + it.id + '">' +
        '<div class="sp-name"><i class="sw ' + esc(it.availability) + '"></i>' + esc(it.name) + '</div>' +
        '<div class="sp-sub">' + esc(it.operator_name || it.operator_id) + (it.district_name ? ' · ' +
        esc(EN ? (it.district_name_en || it.district_name) : it.district_name) : '') + '</div>' +
        '<div class="sp-sub">' + esc(it.address || '') + '</div>' +
        '<div class="sp-meta"><span class="free-n">' + it.connectors_free + '/' + it.connectors_total + ' ' +
        esc(t('free')) + '</span>' + (pw ? ' · ' + pw : '') + (dist ? ' · ' + dist : '') + ' · ' + price + rel + '</div></li>';
    }).join('');
    if (append) ol.insertAdjacentHTML('beforeend', html); else ol.innerHTML = html;
    state.rendered = state.items.length;
    $('sp-more').hidden = !state.next;
  }

  /* 0.9932 -> "99.3"; 1 -> "100": the share as a percentage with one decimal at most. */
  function uptimePct(u) {
    return String(Math.round(Number(u) * 1000) / 10);
  }

  function setStatus(msg, cls) {
    var el = $('sp-status');
    el.textContent = msg;
    el.className = 'sp-status' + (cls ? ' ' + cls : '');
  }

  function renderAll() {
    $('sp-q').value = state.q;
    $('sp-sort').value = state.sort;
    $('sp-max-price').value = state.extra.get('max_price') || '';
    $('sp-min-uptime').value = UPTIMES.indexOf(state.extra.get('min_uptime') || '') >= 0
      ? (state.extra.get('min_uptime') || '') : '';
    $('sp-adv').hidden = !state.open;
    $('sp-toggle').setAttribute('aria-expanded', String(state.open));
    renderTabs();
    renderChips();
  }

  /* --- API ---------------------------------------------------------------------------------- */
  /* Searches and count refreshes are numbered apart: a newer one of the same kind supersedes an
   * older one, but a count refresh never discards a search's results. */
  var seq = {search: 0, counts: 0};
  function fetchSearch(params, kind) {
    kind = kind || 'search';
    var my = ++seq[kind];
    var url = '/api/v1/stations?' + params.toString();
    return fetch(url, {headers: {Accept: 'application/json'}}).then(function (r) {
      if (my !== seq[kind]) return null;  // a newer request superseded this one
      if (r.status === 429) throw new Error('429');
      if (!r.ok) return r.json().then(function (b) { throw new Error(b.message || String(r.status)); });
      return r.json();
    });
  }

  function failed(err) {
    setStatus(err && err.message === '429' ? t('limited') : t('failed') + (err && err.message && err.message !== '429'
      ? '：' + err.message : ''), 'error');
  }

  /* Counts only (the user is still choosing): the facets of the pending selection. */
  var countTimer = null;
  function refreshCounts() {
    clearTimeout(countTimer);
    countTimer = setTimeout(function () {
      var p = filterQuery();
      p.set('limit', '1');
      fetchSearch(p, 'counts').then(function (body) {
        if (!body) return;
        state.facets = body.facets;
        renderChips();
      }, failed);
    }, 200);
  }

  /* Apply: results, map tiles, URL. */
  function runSearch(opts) {
    opts = opts || {};
    clearTimeout(countTimer);  // the search brings the counts of this very selection
    seq.counts++;              // and a count refresh still on its way must not overwrite them
    var p = filterQuery();
    var shared = p.toString();
    if (window.zhMap && window.zhMap.setFilters) window.zhMap.setFilters(shared);
    var url = new URL(window.location.href);
    var keep = new URLSearchParams();
    if (url.searchParams.get('lang')) keep.set('lang', url.searchParams.get('lang'));
    p.forEach(function (v, k) { keep.set(k, v); });
    if (state.sort) keep.set('sort', state.sort);
    history.replaceState(null, '', url.pathname + (keep.toString() ? '?' + keep.toString() : '') + url.hash);
    p.set('limit', String(PAGE));
    p.set('crs', CRS);
    if (state.sort) p.set('sort', state.sort);
    else if (!state.q.trim()) p.set('sort', 'name');
    setStatus(t('loading'), 'busy');
    panel.setAttribute('aria-busy', 'true');
    return fetchSearch(p).then(function (body) {
      panel.removeAttribute('aria-busy');
      if (!body) return;
      state.facets = body.facets;
      state.items = body.items;
      state.total = body.total;
      state.next = body.next_cursor;
      state.cursorBase = p;
      renderChips();
      renderTabs();
      renderList(false);
      setStatus(body.total ? t('total', body.total) : t('none'));
      panel.dataset.total = String(body.total);
      panel.dataset.searched = String((+panel.dataset.searched || 0) + 1);
      if (opts.fit) fitToResults();
    }, function (err) { panel.removeAttribute('aria-busy'); failed(err); });
  }

  function loadMore() {
    if (!state.next || !state.cursorBase) return;
    var p = new URLSearchParams(state.cursorBase.toString());
    p.set('cursor', state.next);
    p.set('facets', 'false');
    fetchSearch(p).then(function (body) {
      if (!body) return;
      state.items = state.items.concat(body.items);
      state.next = body.next_cursor;
      renderList(true);
    }, failed);
  }

  /* --- the map ------------------------------------------------------------------------------ */
  /* Run fn once the map's style has loaded ('load' fires once; map.loaded() is false whenever
   * tiles are loading, so it cannot tell). */
  var mapIsReady = false, mapQueue = [];
  if (window.zhMap && window.zhMap.map) {
    if (window.zhMap.map.loaded()) mapIsReady = true;
    window.zhMap.map.once('load', function () {
      mapIsReady = true;
      mapQueue.splice(0).forEach(function (fn) { fn(window.zhMap.map); });
    });
  }
  function mapReady(fn) {
    var z = window.zhMap;
    if (!z || !z.map) return;
    if (mapIsReady) fn(z.map); else mapQueue.push(fn);
  }

  function highlight(item) {
    state.highlighted = item ? item.id : null;
    mapReady(function (map) {
      var data = {type: 'FeatureCollection', features: item ? [{type: 'Feature', properties: {},
        geometry: {type: 'Point', coordinates: [item.lng, item.lat]}}] : []};
      var src = map.getSource('search-highlight');
      if (!src) {
        map.addSource('search-highlight', {type: 'geojson', data: data});
        map.addLayer({id: 'search-highlight', type: 'circle', source: 'search-highlight',
          paint: {'circle-radius': 16, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-width': 3,
                  'circle-stroke-color': '#d9480f'}});
      } else {
        src.setData(data);
      }
    });
  }

  function fitToResults() {
    if (!state.items.length) return;
    mapReady(function (map) {
      var b = new maplibregl.LngLatBounds();
      state.items.forEach(function (it) { b.extend([it.lng, it.lat]); });
      map.fitBounds(b, {padding: 40, maxZoom: 15, duration: 600});
    });
  }

  function itemById(id) {
    for (var i = 0; i < state.items.length; i++) if (String(state.items[i].id) === String(id)) return state.items[i];
    return null;
  }

  function flyTo(item) {
    mapReady(function (map) {
      highlight(item);
      // the popup opens when the flight ends: its own pan-into-view would cut the flight short
      map.once('moveend', function () {
        if (window.zhMap.openStation) {
          window.zhMap.openStation(item.id, {name: item.name, availability: item.availability,
            facility_types: item.facility_types, operator_name: item.operator_name}, [item.lng, item.lat]);
        }
      });
      map.flyTo({center: [item.lng, item.lat], zoom: Math.max(map.getZoom(), 15.5), duration: 800});
    });
  }

  /* --- events ------------------------------------------------------------------------------- */
  panel.querySelector('.sp-box').addEventListener('submit', function (e) {
    e.preventDefault();
    state.q = $('sp-q').value;
    runSearch({fit: true});
  });
  $('sp-toggle').addEventListener('click', function () { state.open = !state.open; renderAll(); });
  $('sp-tabs').addEventListener('click', function (e) {
    var b = e.target.closest('[data-dim]');
    if (!b) return;
    state.dim = b.getAttribute('data-dim');
    renderTabs();
    renderChips();
  });
  $('sp-chips').addEventListener('click', function (e) {
    var b = e.target.closest('.chip');
    if (!b) return;
    var v = b.getAttribute('data-value');
    var sel = state.sel[state.dim];
    var i = sel.indexOf(v);
    if (i >= 0) sel.splice(i, 1); else sel.push(v);
    renderTabs();
    renderChips();
    refreshCounts();
  });
  $('sp-all').addEventListener('click', function () {
    var dim = state.dim;
    var vals = facetValues(dim).map(function (fv) { return String(fv.value); });
    var allOn = vals.length && vals.every(function (v) { return state.sel[dim].indexOf(v) >= 0; });
    state.sel[dim] = allOn ? [] : vals;  // a second press clears the dimension again
    renderTabs();
    renderChips();
    refreshCounts();
  });
  $('sp-reset').addEventListener('click', function () {
    DIMS.forEach(function (d) { state.sel[d] = []; });
    state.q = '';
    state.sort = '';
    state.extra = new URLSearchParams();
    renderAll();
    highlight(null);
    runSearch({fit: false});
  });
  $('sp-apply').addEventListener('click', function () {
    state.q = $('sp-q').value;
    runSearch({fit: true});
  });
  $('sp-more').addEventListener('click', loadMore);
  $('sp-sort').addEventListener('change', function () {
    state.sort = $('sp-sort').value;
    state.q = $('sp-q').value;
    runSearch({fit: false});
  });
  $('sp-max-price').addEventListener('change', function () {
    var v = $('sp-max-price').value.trim();
    if (v && (isNaN(Number(v)) || Number(v) < 0 || Number(v) > 100)) { $('sp-max-price').value = ''; v = ''; }
    if (v) state.extra.set('max_price', v); else state.extra.delete('max_price');
    refreshCounts();
  });
  $('sp-min-uptime').addEventListener('change', function () {
    var v = $('sp-min-uptime').value;
    if (v) state.extra.set('min_uptime', v); else state.extra.delete('min_uptime');
    refreshCounts();
  });
  $('sp-share').addEventListener('click', function () {
    var href = window.location.href;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(href).then(function () { setStatus(t('copied')); }, function () {});
    } else {
      window.prompt(t('share'), href);
    }
  });
  var list = $('sp-results');
  list.addEventListener('mouseover', function (e) {
    var li = e.target.closest('.sp-item');
    if (!li || li.classList.contains('hover')) return;
    Array.prototype.forEach.call(list.querySelectorAll('.sp-item.hover'), function (x) { x.classList.remove('hover'); });
    li.classList.add('hover');
    highlight(itemById(li.getAttribute('data-id')));
  });
  list.addEventListener('mouseleave', function () {
    Array.prototype.forEach.call(list.querySelectorAll('.sp-item.hover'), function (x) { x.classList.remove('hover'); });
    highlight(null);
  });
  list.addEventListener('click', function (e) {
    var li = e.target.closest('.sp-item');
    if (li) { var it = itemById(li.getAttribute('data-id')); if (it) flyTo(it); }
  });
  list.addEventListener('keydown', function (e) {
    if (e.key !== 'Enter') return;
    var li = e.target.closest('.sp-item');
    if (li) { var it = itemById(li.getAttribute('data-id')); if (it) flyTo(it); }
  });

  /* --- start -------------------------------------------------------------------------------- */
  readUrl();
  renderAll();
  runSearch({fit: false});
  window.zhSearch = {state: state, run: runSearch};
})();
