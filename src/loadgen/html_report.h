// A self-contained HTML report of one or more benchmark runs (inline SVG and CSS, no
// scripts, no network fetches), written by `infergate bench compare --html` and reusable
// by the virtual-time cluster.
//
// Sections: a summary table (the comparison rows with ratios to the first run); CDF plots
// of TTFT and TPOT with one line per run (log time axis when the values span more than two
// decades); per-run request timelines (one bar per request ordered by send time: send →
// first token, then first token → last token; failed requests in red); and optional sweep
// charts, each a set of named series of (x, y) points, e.g. request rate vs P90 TTFT for
// several routing policies.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "loadgen/compare.h"

namespace infergate::loadgen {

struct SweepSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in the order given
};

struct SweepChart {
  std::string title;    // e.g. "P90 TTFT vs request rate"
  std::string x_label;  // e.g. "request rate (req/s)"
  std::string y_label;  // e.g. "P90 TTFT (ms)"
  std::vector<SweepSeries> series;
  bool log_y = false;
};

struct HtmlReport {
  std::string title = "infergate benchmark report";
  std::vector<NamedResult> runs;
  std::vector<SweepChart> sweeps;  // optional; drawn after the summary
};

// The HTML document. Runs without per-request data get no CDF line or timeline.
std::string RenderHtmlReport(const HtmlReport& report);
Status WriteHtmlReport(const HtmlReport& report, const std::string& path);

}  // namespace infergate::loadgen
