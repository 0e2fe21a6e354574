// Draws the statistics page's charts from the figures the server embedded with json_script.
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const percent = (v) => (v === null ? null : Math.round(v * 1000) / 10);
  const colours = { blue: "#2457c5", orange: "#d9822b", green: "#1f7a3d", red: "#b3261e", grey: "#8a93a6" };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false; // figures, not a show: draw at once
  const pct = { min: 0, max: 100, ticks: { callback: (v) => `${v} %` } };

  new Chart(document.getElementById("chart-scenery"), {
    type: "bar",
    data: {
      labels: data.sceneries,
      datasets: [
        { label: "Flag rate", data: data.flag_rate.map(percent), backgroundColor: colours.orange },
        { label: "Precision", data: data.precision.map(percent), backgroundColor: colours.blue },
        { label: "Recall", data: data.recall.map(percent), backgroundColor: colours.green },
        { label: "F1", data: data.f1.map(percent), backgroundColor: colours.grey },
      ],
    },
    options: { scales: { y: pct }, plugins: { title: { display: true, text: "Per scenery" } } },
  });

  new Chart(document.getElementById("chart-daily"), {
    type: "line",
    data: {
      labels: data.days,
      datasets: [
        { type: "bar", label: "Submissions", data: data.daily_submissions, backgroundColor: "#c9d6f2", yAxisID: "y" },
        { label: "Flag rate", data: data.daily_flag_rate.map(percent), borderColor: colours.orange, backgroundColor: colours.orange, yAxisID: "rate", tension: 0.2 },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, rate: { ...pct, position: "right", grid: { drawOnChartArea: false } } },
      plugins: { title: { display: true, text: "Per day" } },
    },
  });

  new Chart(document.getElementById("chart-models"), {
    type: "bar",
    data: {
      labels: data.models,
      datasets: [
        { label: "Precision", data: data.model_precision.map(percent), backgroundColor: colours.blue },
        { label: "Recall", data: data.model_recall.map(percent), backgroundColor: colours.green },
        { label: "F1", data: data.model_f1.map(percent), backgroundColor: colours.grey },
      ],
    },
    options: { scales: { y: pct }, plugins: { title: { display: true, text: "Per model" } } },
  });
})();

// Live error rates: the estimate with its confidence bounds as a band, and recall, per week and per scenery.
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const percent = (v) => (v === null ? null : Math.round(v * 1000) / 10);
  const pct = { min: 0, max: 100, ticks: { callback: (v) => `${v} %` } };
  const bound = { borderColor: "#e3a77a", borderDash: [4, 4], pointRadius: 0, fill: false };
  const series = (prefix) => [
    { label: "False flags", data: data[`${prefix}_false_flag_rate`].map(percent), borderColor: "#d9822b", backgroundColor: "#d9822b" },
    { label: "Lower bound", data: data[`${prefix}_false_flag_low`].map(percent), ...bound },
    { label: "Upper bound", data: data[`${prefix}_false_flag_high`].map(percent), ...bound },
    { label: "Recall", data: data[`${prefix}_recall`].map(percent), borderColor: "#1f7a3d", backgroundColor: "#1f7a3d" },
    { label: "Seen by a human", data: data[`${prefix}_human_share`].map(percent), borderColor: "#8a93a6", backgroundColor: "#8a93a6" },
  ];
  new Chart(document.getElementById("chart-live-weeks"), {
    type: "line",
    data: { labels: data.live_weeks, datasets: series("live_week") },
    options: { spanGaps: true, scales: { y: pct }, plugins: { title: { display: true, text: "Live, per week" } } },
  });
  new Chart(document.getElementById("chart-live-scenery"), {
    type: "line",
    data: { labels: data.sceneries, datasets: series("live_scenery").map((d) => ({ ...d, showLine: false, pointRadius: 4 })) },
    options: { scales: { y: pct }, plugins: { title: { display: true, text: "Live, per scenery" } } },
  });
})();
