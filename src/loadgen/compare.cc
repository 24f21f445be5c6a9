#include "loadgen/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <optional>

namespace infergate::loadgen {
namespace {

struct RowSpec {
  std::string label;
  std::function<std::optional<double>(const BenchmarkResult&)> value;
  bool integer = false;
};

std::optional<double> Pct(const MetricSummary& s, double p) {
  for (const auto& [q, v] : s.percentiles) {
    if (q == p) return v;
  }
  return std::nullopt;
}

std::vector<RowSpec> Rows() {
  std::vector<RowSpec> rows = {
      {"Benchmark duration (s)", [](const BenchmarkResult& r) { return r.duration_s; }},
      {"Successful requests",
       [](const BenchmarkResult& r) { return static_cast<double>(r.completed); }, true},
      {"Failed requests", [](const BenchmarkResult& r) { return static_cast<double>(r.failed); },
       true},
      {"Request throughput (req/s)", [](const BenchmarkResult& r) { return r.request_throughput; }},
      {"Output token throughput (tok/s)",
       [](const BenchmarkResult& r) { return r.output_throughput; }},
      {"Total Token throughput (tok/s)",
       [](const BenchmarkResult& r) { return r.total_token_throughput; }},
  };
  const std::pair<const char*, const char*> metrics[] = {
      {"ttft", "TTFT"}, {"tpot", "TPOT"}, {"itl", "ITL"}, {"e2el", "E2EL"}};
  for (const auto& [key, label] : metrics) {
    const std::string k = key;
    const auto has = [k](const BenchmarkResult& r) {
      const auto& m = r.metrics.percentile_metrics;
      // Results computed here always carry all four metrics; files from benchmark_serving
      // carry only the selected ones.
      return r.requests.size() > 0 || std::find(m.begin(), m.end(), k) != m.end();
    };
    rows.push_back({fmt::format("Mean {} (ms)", label),
                    [k, has](const BenchmarkResult& r) -> std::optional<double> {
                      if (!has(r)) return std::nullopt;
                      return r.Metric(k)->mean;
                    }});
    rows.push_back({fmt::format("Median {} (ms)", label),
                    [k, has](const BenchmarkResult& r) -> std::optional<double> {
                      if (!has(r)) return std::nullopt;
                      return r.Metric(k)->median;
                    }});
    rows.push_back({fmt::format("P99 {} (ms)", label),
                    [k, has](const BenchmarkResult& r) -> std::optional<double> {
                      if (!has(r)) return std::nullopt;
                      return Pct(*r.Metric(k), 99);
                    }});
  }
  return rows;
}

}  // namespace

std::string FormatComparison(std::span<const NamedResult> runs, bool markdown) {
  const std::vector<RowSpec> rows = Rows();
  // cells[row][col]; col 0 is the label.
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> header = {"Metric"};
  for (const NamedResult& run : runs) header.push_back(run.name);
  cells.push_back(header);
  for (const RowSpec& row : rows) {
    std::vector<std::string> line = {row.label};
    const std::optional<double> base = runs.empty() ? std::nullopt : row.value(runs[0].result);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const std::optional<double> v = row.value(runs[i].result);
      if (!v) {
        line.push_back("-");
        continue;
      }
      std::string cell =
          row.integer ? fmt::format("{}", static_cast<long long>(*v)) : fmt::format("{:.2f}", *v);
      if (i > 0 && base && *base != 0) cell += fmt::format(" ({:.2f}x)", *v / *base);
      line.push_back(std::move(cell));
    }
    cells.push_back(std::move(line));
  }

  std::string out;
  if (markdown) {
    for (std::size_t r = 0; r < cells.size(); ++r) {
      out += "|";
      for (const std::string& c : cells[r]) out += " " + c + " |";
      out += "\n";
      if (r == 0) {
        out += "|";
        for (std::size_t c = 0; c < cells[0].size(); ++c) out += c == 0 ? "---|" : "---:|";
        out += "\n";
      }
    }
    return out;
  }
  std::vector<std::size_t> width(cells[0].size(), 0);
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  }
  for (std::size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (std::size_t c = 0; c < cells[r].size(); ++c) {
      if (c > 0) line += "  ";
      line += fmt::format("{:<{}}", cells[r][c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) {
      std::string rule;
      for (std::size_t c = 0; c < width.size(); ++c) {
        if (c > 0) rule += "  ";
        rule += std::string(width[c], '-');
      }
      out += rule + "\n";
    }
  }
  return out;
}

}  // namespace infergate::loadgen
