#include "config/loader.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/decode.h"
#include "config/report.h"
#include "config/resolve.h"
#include "config/yaml_field.h"

namespace infergate::config {
namespace {

namespace fs = std::filesystem;

// A line that separates YAML documents: "---" alone or followed by a space.
bool IsSeparator(std::string_view line) {
  return line.substr(0, 3) == "---" &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

bool IsBlankOrComment(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    std::size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return false;
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return true;
}

// One document's text: from its "---" line (if any) to the next one.
struct DocumentText {
  std::string_view text;
  int first_line = 0;  // 0-based line of text's start in the file
};

// Splits a file at its separator lines, as kubectl does. yaml-cpp's own multi-document
// loop is not used: some malformed inputs make it produce documents forever, and
// splitting first lets a syntax error in one document leave the others readable. A blank
// or comment-only part before the first separator is not a document.
std::vector<DocumentText> SplitDocuments(std::string_view text) {
  std::vector<DocumentText> docs;
  DocumentText current{text.substr(0, 0), 0};
  std::size_t start = 0;
  std::size_t pos = 0;
  int line = 0;
  auto close = [&](std::size_t end) {
    current.text = text.substr(start, end - start);
    if (!docs.empty() || start != 0 || !IsBlankOrComment(current.text)) docs.push_back(current);
  };
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    std::string_view l = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    if (IsSeparator(l)) {
      close(pos);
      start = pos;
      current.first_line = line;
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
    ++line;
  }
  close(text.size());
  return docs;
}

// Ignores parse events: used to count the documents of a text.
class EventSink final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The 1-based line of a mark inside a document, or 0.
int LineOf(const YAML::Mark& mark, const DocumentText& doc) {
  return mark.line >= 0 ? doc.first_line + mark.line + 1 : 0;
}

void LoadSource(const ConfigSource& source, DecodeSink* sink) {
  auto docs = SplitDocuments(source.text);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const DocumentText& text = docs[i];
    SourceLocation where{source.name, static_cast<int>(i) + 1, text.first_line + 1};
    YAML::Node doc;
    try {
      std::string copy(text.text);
      doc = YAML::Load(copy);
      // A second document without a separator ("..." then more, or text yaml-cpp reads
      // as several documents) would be dropped silently by Load.
      std::stringstream stream(copy);
      YAML::Parser parser(stream);
      EventSink events;
      if (parser.HandleNextDocument(events) && parser.HandleNextDocument(events)) {
        sink->diag->Error(FormatProblem(where, "", "", where.line,
                                        "unexpected content after the document (a missing "
                                        "\"---\" separator or bad indentation?)"));
        continue;
      }
    } catch (const YAML::Exception& e) {
      sink->diag->Error(FormatProblem(where, "", "", LineOf(e.mark, text),
                                      fmt::format("YAML syntax error: {}", e.msg)));
      continue;
    }
    if (!doc.IsDefined() || doc.IsNull()) continue;  // empty document
    int line = LineOf(doc.Mark(), text);
    where.line = line;
    ObjectContext ctx(sink->diag, where, "");
    if (!doc.IsMap()) {
      ctx.Error("", line,
                fmt::format("a document must be a Kubernetes object (a map), got {}",
                            doc.IsSequence() ? "a list" : "a scalar"));
      continue;
    }
    try {
      DecodeObject(YamlField(&ctx, doc, "", line, text.first_line), &ctx, sink);
    } catch (const std::exception& e) {
      // The decoders do not throw by design; keep a malformed input from ever escaping.
      ctx.Error("", line, fmt::format("cannot decode: {}", e.what()));
    }
  }
}

Result<std::shared_ptr<const ConfigSnapshot>> Load(const std::vector<ConfigSource>& sources,
                                                   Diagnostics* diag, const LoadOptions& options) {
  auto snapshot = std::make_shared<ConfigSnapshot>();
  snapshot->service_endpoints_from_slices = options.service_endpoints_from_slices;
  snapshot->unresolved_backends_answer_500 = options.unresolved_backends_answer_500;
  std::set<std::string> incomplete;
  DecodeSink sink{&snapshot->objects, &snapshot->skipped, diag, &incomplete};
  for (const auto& source : sources) {
    snapshot->files.push_back(source.name);
    LoadSource(source, &sink);
  }
  Resolve(incomplete, snapshot.get(), diag);

  if (!diag->errors().empty()) {
    std::string message;
    for (const auto& e : diag->errors()) {
      if (!message.empty()) message += '\n';
      message += e;
    }
    return Error{std::move(message)};
  }
  snapshot->warnings = diag->warnings();
  if (options.log_notices) {
    for (const auto& s : snapshot->skipped) spdlog::info("{}", DescribeSkipped(s));
    for (const auto& w : snapshot->warnings) spdlog::warn("{}", w);
  }
  return std::shared_ptr<const ConfigSnapshot>(std::move(snapshot));
}

bool IsYamlFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

Result<std::shared_ptr<const ConfigSnapshot>> LoadConfig(const std::vector<std::string>& paths,
                                                         const LoadOptions& options) {
  Diagnostics diag;
  if (paths.empty()) return Error{"no configuration file given"};
  std::vector<ConfigSource> sources;
  auto read = [&](const std::string& name) {
    std::ifstream in(name, std::ios::binary);
    if (!in) {
      diag.Error(fmt::format("{}: cannot read: {}", name, std::strerror(errno)));
      return;
    }
    std::ostringstream text;
    text << in.rdbuf();
    sources.push_back({name, text.str()});
  };
  for (const auto& path : paths) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      diag.Error(fmt::format("{}: cannot read: no such file or directory", path));
    } else if (fs::is_directory(status)) {
      std::vector<std::string> files;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        if (entry.is_regular_file() && IsYamlFile(entry.path())) {
          files.push_back(entry.path().string());
        }
      }
      if (ec) diag.Error(fmt::format("{}: cannot list: {}", path, ec.message()));
      std::sort(files.begin(), files.end());
      if (files.empty() && !ec) {
        diag.Error(fmt::format("{}: the directory has no .yaml or .yml files", path));
      }
      for (const auto& f : files) read(f);
    } else {
      read(path);
    }
  }
  return Load(sources, &diag, options);
}

Result<std::shared_ptr<const ConfigSnapshot>> LoadConfigFromSources(
    const std::vector<ConfigSource>& sources, const LoadOptions& options) {
  Diagnostics diag;
  return Load(sources, &diag, options);
}

Result<std::shared_ptr<const ConfigSnapshot>> LoadConfigFromString(const std::string& text,
                                                                   const std::string& name,
                                                                   const LoadOptions& options) {
  return LoadConfigFromSources({ConfigSource{name, text}}, options);
}

Result<PartialLoad> LoadConfigSkippingInvalid(std::vector<ConfigSource> sources,
                                              const LoadOptions& options) {
  PartialLoad out;
  LoadOptions quiet = options;
  quiet.log_notices = false;
  // Each round leaves out at least one source, so this ends; several rounds happen only
  // when leaving an object out breaks others that referred to it.
  while (true) {
    Diagnostics diag;
    auto snapshot = Load(sources, &diag, quiet);
    if (snapshot.ok()) {
      out.snapshot = std::move(*snapshot);
      if (options.log_notices) {
        for (const auto& s : out.snapshot->skipped) spdlog::info("{}", DescribeSkipped(s));
        for (const auto& w : out.snapshot->warnings) spdlog::warn("{}", w);
      }
      return out;
    }
    std::map<std::string, std::vector<std::string>> by_source;
    for (const auto& e : diag.errors()) {
      const ConfigSource* owner = nullptr;
      for (const auto& src : sources) {
        if (e.size() > src.name.size() && e.compare(0, src.name.size(), src.name) == 0 &&
            e[src.name.size()] == ':' &&
            (owner == nullptr || src.name.size() > owner->name.size())) {
          owner = &src;
        }
      }
      if (owner == nullptr) return Error{e};
      by_source[owner->name].push_back(e);
    }
    std::vector<ConfigSource> kept;
    kept.reserve(sources.size());
    for (auto& src : sources) {
      auto it = by_source.find(src.name);
      if (it == by_source.end()) {
        kept.push_back(std::move(src));
      } else {
        out.rejected.push_back({src.name, std::move(it->second)});
      }
    }
    sources = std::move(kept);
  }
}

}  // namespace infergate::config
