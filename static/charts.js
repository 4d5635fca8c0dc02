// Draws every <canvas data-chart="runs"> from the JSON in its data-points attribute:
// rows delivered per run (bars) and failed runs (red points). The table beside each
// chart holds the same figures for readers without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Chart === "undefined") return;
  for (const canvas of document.querySelectorAll("canvas[data-chart=runs]")) {
    const points = JSON.parse(canvas.dataset.points || "[]");
    new Chart(canvas, {
      data: {
        labels: points.map((p) => p.at),
        datasets: [
          { type: "bar", label: "Rows delivered", data: points.map((p) => p.rows), backgroundColor: "#1971c2" },
          {
            type: "scatter", label: "Failed runs", data: points.map((p) => (p.failed ? 0 : null)),
            pointBackgroundColor: "#c92a2a", pointRadius: 6, showLine: false,
          },
        ],
      },
      options: { animation: false, responsive: true, scales: { y: { beginAtZero: true, title: { display: true, text: "rows" } } } },
    });
  }
});
