// Home page charts (Chart.js from npm, served from /static/vendor): facilities by district and by station type,
// and the energy charged per day by district.
(function () {
  const el = document.getElementById("stats-data");
  if (!el || typeof Chart === "undefined") return;
  const data = JSON.parse(el.textContent);
  const en = data.lang === "en";
  const name = (r) => (en ? r.name_en : r.name);
  const colors = ["#0a7d5a", "#e08a00", "#2f6fb3", "#8a5cc2", "#c8372d", "#1a9a4b", "#8a8f93"];
  const district = document.getElementById("chart-district");
  if (district) {
    new Chart(district, {
      type: "bar",
      data: {
        labels: data.by_district.map(name),
        datasets: [
          { label: en ? "Stations" : "充电站", data: data.by_district.map((r) => r.stations), backgroundColor: colors[0] },
          { label: en ? "Piles" : "充电桩", data: data.by_district.map((r) => r.piles), backgroundColor: colors[1] },
          { label: en ? "Connectors" : "充电接口", data: data.by_district.map((r) => r.connectors), backgroundColor: colors[2] },
        ],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
  const type = document.getElementById("chart-type");
  if (type && data.by_type.length) {
    new Chart(type, {
      type: "doughnut",
      data: {
        labels: data.by_type.map(name),
        datasets: [{ data: data.by_type.map((r) => r.stations), backgroundColor: colors }],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom" } } },
    });
  }
})();
(function () {
  const el = document.getElementById("charging-data");
  const canvas = document.getElementById("chart-charging");
  if (!el || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(el.textContent);
  const en = data.lang === "en";
  const colors = ["#0a7d5a", "#e08a00", "#2f6fb3", "#8a5cc2", "#c8372d", "#1a9a4b", "#8a8f93"];
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.days.map((d) => d.slice(5)),
      datasets: data.series.map((s, i) => ({ label: en ? s.name_en : s.name, data: s.energy, backgroundColor: colors[i % colors.length] })),
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
               scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
})();
