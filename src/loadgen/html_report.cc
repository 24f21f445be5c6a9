#include "loadgen/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

namespace infergate::loadgen {
namespace {

constexpr const char* kPalette[] = {"#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951",
                                    "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

const char* Color(std::size_t i) { return kPalette[i % kPaletteSize]; }

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatTick(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e6) return fmt::format("{:g}", v);
  if (a >= 100 || v == std::floor(v)) return fmt::format("{:.0f}", v);
  if (a >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

// A linear or log10 axis mapping data values to pixels.
struct Axis {
  double lo = 0, hi = 1;  // data range (log10 of it when log)
  double p0 = 0, p1 = 1;  // pixel range
  bool log = false;

  double Map(double v) const {
    double x = log ? std::log10(std::max(v, 1e-12)) : v;
    return p0 + (x - lo) / (hi - lo) * (p1 - p0);
  }
  std::vector<double> Ticks() const {
    std::vector<double> out;
    if (log) {
      for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e) {
        for (double m : {1.0, 2.0, 5.0}) {
          const double v = m * std::pow(10.0, e);
          const double lv = std::log10(v);
          if (lv >= lo - 1e-9 && lv <= hi + 1e-9) out.push_back(v);
        }
      }
      return out;
    }
    const double span = hi - lo;
    const double raw = span / 6;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
      if (m * mag >= raw) {
        step = m * mag;
        break;
      }
    }
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }
};

Axis MakeAxis(double min_v, double max_v, double p0, double p1, bool allow_log,
              bool force_log = false) {
  Axis a;
  a.p0 = p0;
  a.p1 = p1;
  if (!(min_v <= max_v)) min_v = 0, max_v = 1;
  if ((force_log || (allow_log && min_v > 0 && max_v / min_v > 100)) && min_v > 0) {
    a.log = true;
    a.lo = std::floor(std::log10(min_v) * 4) / 4;
    a.hi = std::ceil(std::log10(max_v) * 4) / 4;
    if (a.hi <= a.lo) a.hi = a.lo + 1;
    return a;
  }
  a.lo = std::min(0.0, min_v);
  a.hi = max_v > a.lo ? max_v * 1.05 : a.lo + 1;
  return a;
}

struct Frame {
  int width = 640, height = 340;
  int left = 64, right = 20, top = 16, bottom = 46;
  double x0() const { return left; }
  double x1() const { return width - right; }
  double y0() const { return height - bottom; }
  double y1() const { return top; }
};

void Axes(std::string& svg, const Frame& f, const Axis& x, const Axis& y, std::string_view x_label,
          std::string_view y_label, bool y_fraction) {
  for (double t : y.Ticks()) {
    const double py = y.Map(t);
    fmt::format_to(std::back_inserter(svg),
                   "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
                   "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
                   f.x0(), f.x1(), py, py, f.x0() - 6, py + 4,
                   y_fraction ? fmt::format("{:.0f}%", t * 100) : FormatTick(t));
  }
  for (double t : x.Ticks()) {
    const double px = x.Map(t);
    fmt::format_to(
        std::back_inserter(svg),
        "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
        px, px, f.y1(), f.y0(), px, f.y0() + 16, FormatTick(t));
  }
  fmt::format_to(
      std::back_inserter(svg),
      "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>"
      "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{3:.1f}\" y2=\"{2:.1f}\"/>",
      f.x0(), f.x1(), f.y0(), f.y1());
  fmt::format_to(std::back_inserter(svg),
                 "<text class=\"label\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}{}</text>",
                 (f.x0() + f.x1()) / 2, f.height - 8, Escape(x_label), x.log ? " (log scale)" : "");
  fmt::format_to(std::back_inserter(svg),
                 "<text class=\"label\" transform=\"translate(14,{:.1f}) rotate(-90)\" "
                 "text-anchor=\"middle\">{}</text>",
                 (f.y0() + f.y1()) / 2, Escape(y_label));
}

std::string Legend(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string out = "<div class=\"legend\">";
  for (const auto& [name, color] : items) {
    out += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", color, Escape(name));
  }
  return out + "</div>";
}

// Per-request TPOT of successful requests with > 1 output token (needs latencies).
std::vector<double> Tpots(const BenchmarkResult& r) {
  std::vector<double> out;
  if (!r.has_latencies) return out;
  for (const RequestOutcome& o : r.requests) {
    if (o.success && o.output_tokens > 1 && o.latency > 0) {
      out.push_back((o.latency - o.ttft) / (o.output_tokens - 1) * 1000.0);
    }
  }
  return out;
}

std::vector<double> Ttfts(const BenchmarkResult& r) {
  std::vector<double> out;
  for (const RequestOutcome& o : r.requests) {
    if (o.success) out.push_back(o.ttft * 1000.0);
  }
  return out;
}

std::string CdfChart(const std::string& title, const std::string& x_label,
                     const std::vector<std::vector<double>>& samples) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  bool any = false;
  for (const auto& s : samples) {
    for (double v : s) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      any = true;
    }
  }
  std::string html =
      fmt::format("<figure class=\"card\"><figcaption>{}</figcaption>", Escape(title));
  if (!any) return html + "<p class=\"empty\">no data</p></figure>";
  Frame f;
  Axis x = MakeAxis(lo, hi, f.x0(), f.x1(), /*allow_log=*/true);
  Axis y;
  y.lo = 0, y.hi = 1, y.p0 = f.y0(), y.p1 = f.y1();
  std::string svg = fmt::format("<svg viewBox=\"0 0 {} {}\" role=\"img\">", f.width, f.height);
  Axes(svg, f, x, y, x_label, "fraction of requests", /*y_fraction=*/true);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    std::vector<double> s = samples[i];
    if (s.empty()) continue;
    std::sort(s.begin(), s.end());
    // At most ~800 steps per line.
    const std::size_t stride = std::max<std::size_t>(1, s.size() / 800);
    std::string pts = fmt::format("{:.1f},{:.1f}", x.Map(s[0]), y.Map(0));
    for (std::size_t k = 0; k < s.size(); k += stride) {
      const double frac = static_cast<double>(k + 1) / static_cast<double>(s.size());
      fmt::format_to(std::back_inserter(pts), " {:.1f},{:.1f}", x.Map(s[k]), y.Map(frac));
    }
    fmt::format_to(std::back_inserter(pts), " {:.1f},{:.1f}", x.Map(s.back()), y.Map(1));
    fmt::format_to(std::back_inserter(svg), "<polyline class=\"cdf\" stroke=\"{}\" points=\"{}\"/>",
                   Color(i), pts);
  }
  return html + svg + "</svg></figure>";
}

std::string Timeline(const NamedResult& run, std::size_t index) {
  const BenchmarkResult& r = run.result;
  std::string html =
      fmt::format("<figure class=\"card wide\"><figcaption>Request timeline — {}</figcaption>",
                  Escape(run.name));
  if (!r.has_send_times || !r.has_latencies || r.requests.empty()) {
    return html + "<p class=\"empty\">no per-request times in this result</p></figure>";
  }
  std::vector<std::size_t> order(r.requests.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return r.requests[a].send_time < r.requests[b].send_time;
  });
  double end = r.duration_s;
  for (const RequestOutcome& o : r.requests) end = std::max(end, o.send_time + o.latency);
  Frame f;
  f.width = 1000;
  const double n = static_cast<double>(order.size());
  const double row = std::clamp(420.0 / n, 0.25, 6.0);
  f.height = static_cast<int>(f.top + f.bottom + row * n);
  Axis x = MakeAxis(0, end, f.x0(), f.x1(), /*allow_log=*/false);
  x.hi = end > 0 ? end : 1;
  Axis y;
  y.lo = 0, y.hi = n, y.p0 = f.y1(), y.p1 = f.y0();
  std::string svg = fmt::format("<svg viewBox=\"0 0 {} {}\" role=\"img\">", f.width, f.height);
  // Axes without y ticks: rows are requests in send order.
  for (double t : x.Ticks()) {
    const double px = x.Map(t);
    fmt::format_to(std::back_inserter(svg),
                   "<line class=\"grid\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" "
                   "y2=\"{2:.1f}\"/><text class=\"tick\" x=\"{0:.1f}\" y=\"{3:.1f}\" "
                   "text-anchor=\"middle\">{4}</text>",
                   px, f.y1(), f.y0(), f.y0() + 16, FormatTick(t));
  }
  const double h = std::max(row * 0.8, 0.25);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const RequestOutcome& o = r.requests[order[k]];
    const double py = y.Map(static_cast<double>(k));
    const double xs = x.Map(o.send_time);
    if (!o.success) {
      const double xe = x.Map(o.send_time + std::max(o.latency, o.ttft));
      fmt::format_to(std::back_inserter(svg),
                     "<rect class=\"fail\" x=\"{:.1f}\" y=\"{:.2f}\" width=\"{:.1f}\" "
                     "height=\"{:.2f}\"/>",
                     xs, py, std::max(xe - xs, 1.5), h);
      continue;
    }
    const double xf = x.Map(o.send_time + o.ttft);
    const double xe = x.Map(o.send_time + o.latency);
    fmt::format_to(std::back_inserter(svg),
                   "<rect class=\"wait\" x=\"{:.1f}\" y=\"{:.2f}\" width=\"{:.1f}\" "
                   "height=\"{:.2f}\"/><rect fill=\"{}\" x=\"{:.1f}\" y=\"{:.2f}\" "
                   "width=\"{:.1f}\" height=\"{:.2f}\"/>",
                   xs, py, std::max(xf - xs, 0.0), h, Color(index), xf, py, std::max(xe - xf, 0.5),
                   h);
  }
  fmt::format_to(
      std::back_inserter(svg),
      "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>"
      "<text class=\"label\" x=\"{3:.1f}\" y=\"{4}\" text-anchor=\"middle\">time since "
      "start (s)</text><text class=\"label\" transform=\"translate(14,{5:.1f}) "
      "rotate(-90)\" text-anchor=\"middle\">requests by send time</text>",
      f.x0(), f.x1(), f.y0(), (f.x0() + f.x1()) / 2, f.height - 8, (f.y0() + f.y1()) / 2);
  html += svg + "</svg>";
  html += Legend({{"send → first token", "#c9ced6"},
                  {"first token → last token", Color(index)},
                  {"failed", "#d62728"}});
  return html + "</figure>";
}

std::string SweepSvg(const SweepChart& chart) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const SweepSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      xlo = std::min(xlo, x), xhi = std::max(xhi, x);
      ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    }
  }
  std::string html =
      fmt::format("<figure class=\"card\"><figcaption>{}</figcaption>", Escape(chart.title));
  if (!(xlo <= xhi)) return html + "<p class=\"empty\">no data</p></figure>";
  Frame f;
  Axis x = MakeAxis(xlo, xhi, f.x0(), f.x1(), /*allow_log=*/false);
  Axis y = MakeAxis(ylo, yhi, f.y0(), f.y1(), /*allow_log=*/false, chart.log_y && ylo > 0);
  std::string svg = fmt::format("<svg viewBox=\"0 0 {} {}\" role=\"img\">", f.width, f.height);
  Axes(svg, f, x, y, chart.x_label, chart.y_label, /*y_fraction=*/false);
  std::vector<std::pair<std::string, std::string>> legend;
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const SweepSeries& s = chart.series[i];
    std::string pts;
    for (const auto& [px, py] : s.points) {
      fmt::format_to(std::back_inserter(pts), "{:.1f},{:.1f} ", x.Map(px), y.Map(py));
    }
    fmt::format_to(std::back_inserter(svg),
                   "<polyline class=\"sweep\" stroke=\"{}\" points=\"{}\"/>", Color(i), pts);
    for (const auto& [px, py] : s.points) {
      fmt::format_to(std::back_inserter(svg),
                     "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"><title>{}: "
                     "({}, {})</title></circle>",
                     x.Map(px), y.Map(py), Color(i), Escape(s.name), FormatTick(px),
                     FormatTick(py));
    }
    legend.emplace_back(s.name, Color(i));
  }
  return html + svg + "</svg>" + Legend(legend) + "</figure>";
}

constexpr const char* kStyle = R"css(
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;padding:28px 36px;font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 18px}
.grid2{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:0;flex:1 1 520px;max-width:720px}
.card.wide{max-width:none;flex-basis:100%}
figcaption{font-weight:600;margin-bottom:6px}
svg{width:100%;height:auto;display:block}
.grid{stroke:#eaeef2;stroke-width:1}.axis{stroke:#8c959f;stroke-width:1}
.tick{font-size:12px;fill:var(--muted)}.label{font-size:13px;fill:var(--fg)}
.cdf,.sweep{fill:none;stroke-width:2;stroke-linejoin:round}
.wait{fill:#c9ced6}.fail{fill:#d62728}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin-top:6px;color:var(--muted);font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{padding:5px 12px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f3f6;font-weight:600}
td .ratio{color:var(--muted);font-size:12px;margin-left:4px}
td .better{color:#1a7f37}td .worse{color:#cf222e}
.empty{color:var(--muted)}
)css";

// Rows where a larger value is better; for the others smaller is better.
bool LargerIsBetter(std::string_view label) {
  return label.find("throughput") != std::string_view::npos ||
         label.find("Successful") != std::string_view::npos;
}

std::string SummaryTable(const std::vector<NamedResult>& runs) {
  // Reuse the comparison rows through the Markdown form: it has one cell per value.
  const std::string md = FormatComparison(runs, /*markdown=*/true);
  std::string html = "<table><thead>";
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < md.size()) {
    const std::size_t nl = md.find('\n', pos);
    const std::string line = md.substr(pos, nl - pos);
    pos = nl == std::string::npos ? md.size() : nl + 1;
    if (line_no++ == 1) continue;  // the Markdown rule
    std::vector<std::string> cells;
    std::size_t c = 1;
    while (c < line.size()) {
      const std::size_t bar = line.find('|', c);
      if (bar == std::string::npos) break;
      std::string cell = line.substr(c, bar - c);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
      c = bar + 1;
    }
    const bool head = line_no == 1;
    html += "<tr>";
    for (std::size_t k = 0; k < cells.size(); ++k) {
      std::string cell = Escape(cells[k]);
      const std::size_t paren = cells[k].find(" (");
      if (!head && k > 0 && paren != std::string::npos) {
        const double ratio = std::atof(cells[k].c_str() + paren + 2);
        const bool larger_better = LargerIsBetter(cells[0]);
        const char* cls = ratio == 1.0 ? "" : ((ratio > 1.0) == larger_better ? "better" : "worse");
        if (cells[0].find("Failed") != std::string::npos) cls = ratio > 1.0 ? "worse" : "better";
        cell =
            fmt::format("{}<span class=\"ratio {}\">{}</span>", Escape(cells[k].substr(0, paren)),
                        cls, Escape(cells[k].substr(paren + 1)));
      }
      html += head ? "<th>" + cell + "</th>" : "<td>" + cell + "</td>";
    }
    html += head ? "</tr></thead><tbody>" : "</tr>";
  }
  return html + "</tbody></table>";
}

}  // namespace

std::string RenderHtmlReport(const HtmlReport& report) {
  std::string html = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">";
  html +=
      fmt::format("<title>{}</title><style>{}</style></head><body>", Escape(report.title), kStyle);
  html += fmt::format("<h1>{}</h1>", Escape(report.title));
  std::string sub;
  for (std::size_t i = 0; i < report.runs.size(); ++i) {
    const RunInfo& info = report.runs[i].result.info;
    sub += fmt::format(
        "{}<b style=\"color:{}\">{}</b>: {} requests, {} {}, rate {}{}{}", i ? " · " : "", Color(i),
        Escape(report.runs[i].name), report.runs[i].result.completed + report.runs[i].result.failed,
        Escape(info.backend), Escape(info.model_id),
        std::isinf(info.request_rate) ? "inf" : FormatTick(info.request_rate),
        info.max_concurrency ? fmt::format(", concurrency {}", *info.max_concurrency) : "",
        info.time_scale != 1.0 ? fmt::format(", time scale {}", info.time_scale) : "");
  }
  html += fmt::format("<p class=\"sub\">{}</p>", sub);
  if (!report.runs.empty()) {
    html += "<h2>Summary</h2>" + SummaryTable(report.runs);
    html += "<p class=\"sub\">Ratios are to the first run; green is better, red worse.</p>";
  }
  if (!report.sweeps.empty()) {
    html += "<h2>Sweeps</h2><div class=\"grid2\">";
    for (const SweepChart& c : report.sweeps) html += SweepSvg(c);
    html += "</div>";
  }
  if (!report.runs.empty()) {
    std::vector<std::vector<double>> ttfts, tpots;
    std::vector<std::pair<std::string, std::string>> legend;
    for (std::size_t i = 0; i < report.runs.size(); ++i) {
      ttfts.push_back(Ttfts(report.runs[i].result));
      tpots.push_back(Tpots(report.runs[i].result));
      legend.emplace_back(report.runs[i].name, Color(i));
    }
    html += "<h2>Distributions</h2>" + Legend(legend) +
            "<div class=\"grid2\" style=\"margin-top:10px\">";
    html += CdfChart("Time to first token (CDF)", "TTFT (ms)", ttfts);
    html += CdfChart("Time per output token (CDF)", "TPOT (ms)", tpots);
    html += "</div><h2>Timelines</h2><div class=\"grid2\">";
    for (std::size_t i = 0; i < report.runs.size(); ++i) html += Timeline(report.runs[i], i);
    html += "</div>";
  }
  html += "</body></html>\n";
  return html;
}

Status WriteHtmlReport(const HtmlReport& report, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{fmt::format("cannot write {}", path)};
  out << RenderHtmlReport(report);
  out.close();
  if (!out) return Error{fmt::format("error writing {}", path)};
  return Ok();
}

}  // namespace infergate::loadgen
