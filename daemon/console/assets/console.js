// The console's only script: asks before destructive forms, and shows a running sync's
// progress as the server streams it. Every page works without it.
"use strict";

document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  const watched = document.querySelector("[data-watch]");
  if (!watched || !window.EventSource) {
    return;
  }
  const source = new EventSource(watched.getAttribute("data-watch"));
  source.onmessage = (message) => {
    const job = JSON.parse(message.data);
    const status = document.getElementById("job-status");
    status.textContent = job.status;
    status.className = "badge " + job.status;
    const bar = document.getElementById("job-progress");
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    bar.textContent = job.done + " of " + job.total;
    for (const key of ["fetched", "created", "updated", "unchanged", "failed", "skipped", "warnings", "conflicts"]) {
      const cell = document.getElementById("stat-" + key);
      if (cell) {
        cell.textContent = job[key];
      }
    }
    if (job.finished) {
      source.close();
      // The final numbers stay a moment; then the finished page, with the records' errors
      // and the final times.
      window.setTimeout(() => window.location.reload(), 1500);
    }
  };
  // A dropped stream (a proxy's idle timeout, a restart): the page reloads and starts over.
  source.onerror = () => {
    source.close();
    window.setTimeout(() => window.location.reload(), 5000);
  };
});
