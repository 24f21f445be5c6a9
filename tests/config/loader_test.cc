// Document-level loading: files and directories, YAML errors, skipped kinds, duplicates,
// and the collection of every error of a load.
#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LoadErrors;
using testing::LoadOk;
using testing::LoadText;
using testing::OneError;
using ::testing::SizeIs;
using testing::Yaml;

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("infergate_config_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

const std::string kMinimal = Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: http, protocol: HTTP, port: 8080}]
)");

TEST(ConfigLoader, EmptyDocumentsAndCommentsAreIgnored) {
  auto snap = LoadOk("# a comment\n---\n---\n" + kMinimal + "---\n...\n");
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->gateways, SizeIs(1));
  EXPECT_EQ(snap->gateways[0].id, "default/gw");
  EXPECT_TRUE(snap->skipped.empty());
}

TEST(ConfigLoader, EmptyInputHasNothing) {
  auto snap = LoadOk("");
  ASSERT_TRUE(snap);
  EXPECT_TRUE(snap->gateways.empty());
  EXPECT_THAT(snap->files, ElementsAre("test.yaml"));
}

TEST(ConfigLoader, NonMapDocumentIsAnError) {
  EXPECT_EQ(OneError(kMinimal + "---\n- a\n- b\n"),
            "test.yaml:7: document 2: a document must be a Kubernetes object (a map), got a list");
  EXPECT_EQ(
      OneError("just text\n"),
      "test.yaml:1: document 1: a document must be a Kubernetes object (a map), got a scalar");
}

TEST(ConfigLoader, YamlSyntaxErrorNamesLineAndDocument) {
  std::string text = kMinimal + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: [x\n";
  std::string error = OneError(text);
  EXPECT_THAT(error, HasSubstr("test.yaml:"));
  EXPECT_THAT(error, HasSubstr("document 2: YAML syntax error: "));
  // Tabs for indentation are a syntax error too.
  EXPECT_THAT(OneError("a:\n\t- b\n"), HasSubstr("YAML syntax error"));
}

TEST(ConfigLoader, ASyntaxErrorLeavesTheOtherDocumentsReadable) {
  auto errors = LoadErrors(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n---\n"
      "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad}\n");
  ASSERT_THAT(errors, SizeIs(2));
  EXPECT_THAT(errors[0], HasSubstr("test.yaml:4: document 1: YAML syntax error: "));
  EXPECT_EQ(errors[1],
            "test.yaml:7: document 2: Pod/Bad: metadata.name: must be a lower-case RFC 1123 name "
            "(a-z, 0-9, '-' and '.', starting and ending with a letter or digit), got \"Bad\"");
}

TEST(ConfigLoader, TextYamlCppReadsAsEndlessDocumentsIsAnError) {
  // yaml-cpp's own multi-document loop never ends on this text.
  EXPECT_EQ(OneError(kMinimal + "---\n   \"qwq\", Critical.\n"),
            "test.yaml:6: document 2: unexpected content after the document (a missing \"---\" "
            "separator or bad indentation?)");
  EXPECT_THAT(OneError("a: 1\n...\nb: 2\n"), HasSubstr("unexpected content after the document"));
}

TEST(ConfigLoader, SeparatorsMayCarryContent) {
  auto snap =
      LoadOk("--- # first\n" + kMinimal + "--- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n");
  ASSERT_TRUE(snap);
  EXPECT_THAT(snap->objects.pods, SizeIs(1));
  EXPECT_EQ(snap->objects.pods[0].meta.source.document, 2);
  EXPECT_EQ(snap->objects.pods[0].meta.source.line, 7);
}

TEST(ConfigLoader, KindAndApiVersionAreRequired) {
  EXPECT_EQ(OneError("apiVersion: v1\nmetadata: {name: x}\n"),
            "test.yaml:1: document 1: kind: is required");
  EXPECT_EQ(OneError("kind: Pod\nmetadata: {name: x}\n"),
            "test.yaml:1: document 1: Pod/x: apiVersion: is required");
}

TEST(ConfigLoader, OtherKindsAreSkippedWithTheirReason) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
---
apiVersion: gateway.networking.k8s.io/v2
kind: Gateway
metadata: {name: future}
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: istio}
)"));
  ASSERT_TRUE(snap);
  EXPECT_TRUE(snap->gateways.empty());
  ASSERT_THAT(snap->skipped, SizeIs(4));
  EXPECT_EQ(snap->skipped[0].kind, "ConfigMap");
  EXPECT_EQ(snap->skipped[0].name, "cm");
  EXPECT_EQ(snap->skipped[0].api_version, "v1");
  EXPECT_EQ(snap->skipped[0].source.document, 1);
  EXPECT_EQ(snap->skipped[0].reason, "kind not used by infergate");
  EXPECT_EQ(snap->skipped[1].kind, "Deployment");
  EXPECT_EQ(snap->skipped[1].source.document, 2);
  EXPECT_THAT(
      snap->skipped[2].reason,
      AllOf(HasSubstr("apiVersion gateway.networking.k8s.io/v2 of Gateway is not supported"),
            HasSubstr("gateway.networking.k8s.io/v1")));
  EXPECT_THAT(snap->skipped[3].reason, HasSubstr("networking.istio.io/v1beta1"));
}

TEST(ConfigLoader, DuplicateKeysAreErrors) {
  EXPECT_EQ(OneError(Yaml(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: http, protocol: HTTP, port: 8080}]
  listeners: [{name: http, protocol: HTTP, port: 9090}]
)")),
            "test.yaml:6: document 1: Gateway/gw: spec.listeners: duplicate key");
}

TEST(ConfigLoader, ListItemsAreLoadedAsObjects) {
  auto snap = LoadOk(Yaml(R"(
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  status: {podIP: 10.0.0.1}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
)"));
  ASSERT_TRUE(snap);
  ASSERT_THAT(snap->objects.pods, SizeIs(1));
  EXPECT_EQ(snap->objects.pods[0].ip, "10.0.0.1");
  ASSERT_THAT(snap->skipped, SizeIs(1));
  EXPECT_EQ(snap->skipped[0].kind, "ConfigMap");
  // Errors inside items name the item.
  EXPECT_EQ(OneError("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n"
                     "  metadata: {name: a}\n  status: {podIP: nope}\n"),
            "test.yaml:7: document 1: Pod/a: items[0].status.podIP: must be an IPv4 or IPv6 "
            "address, got \"nope\"");
}

TEST(ConfigLoader, DuplicateObjectsOfOneKindAndNamespaceAreErrors) {
  std::string pod_a = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n";
  std::string pod_a_other_ns = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n";
  std::string svc_a =
      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n";
  // Same name in another namespace or of another kind is fine.
  ASSERT_TRUE(LoadOk(pod_a + "---\n" + pod_a_other_ns + "---\n" + svc_a));
  EXPECT_EQ(OneError(pod_a + "---\n" + pod_a),
            "test.yaml:5: document 2: Pod/a: metadata.name: Pod \"default/a\" is defined twice; "
            "first at test.yaml:1 (document 1)");
}

TEST(ConfigLoader, MetadataIsValidated) {
  EXPECT_EQ(
      OneError("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n"),
      "test.yaml:3: document 1: Pod/Bad_Name: metadata.name: must be a lower-case RFC 1123 name "
      "(a-z, 0-9, '-' and '.', starting and ending with a letter or digit), got \"Bad_Name\"");
  EXPECT_EQ(OneError("apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n"),
            "test.yaml:3: document 1: Pod/x/?: metadata.name: is required");
  EXPECT_EQ(OneError("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
                     "  creationTimestamp: yesterday\n"),
            "test.yaml:5: document 1: Pod/a: metadata.creationTimestamp: must be an RFC 3339 "
            "time such as \"2024-05-01T12:00:00Z\", got \"yesterday\"");
  auto snap = LoadOk(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: team\n"
      "  labels: {x: \"1\"}\n  creationTimestamp: \"2024-05-01T12:00:00Z\"\n");
  ASSERT_TRUE(snap);
  const Pod& pod = snap->objects.pods.at(0);
  EXPECT_EQ(pod.meta.Key(), "team/a");
  EXPECT_EQ(pod.meta.labels.at("x"), "1");
  EXPECT_EQ(pod.meta.creation_timestamp, 1714564800);
  EXPECT_EQ(pod.meta.source.file, "test.yaml");
  EXPECT_EQ(pod.meta.source.document, 1);
  EXPECT_EQ(pod.meta.source.line, 1);
}

TEST(ConfigLoader, CollectsEveryErrorOfEveryFile) {
  std::vector<ConfigSource> sources = {
      {"one.yaml",
       "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nstatus: {podIP: x}\n---\n"
       "apiVersion: v1\nkind: Pod\nmetadata: {name: B}\n"},
      {"two.yaml", kMinimal + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
                              "spec: {ports: [{port: 0}]}\n"},
  };
  LoadOptions options;
  options.log_notices = false;
  auto result = LoadConfigFromSources(sources, options);
  ASSERT_FALSE(result.ok());
  const std::string& m = result.error().message;
  EXPECT_THAT(m, HasSubstr("one.yaml:4: document 1: Pod/a: status.podIP:"));
  EXPECT_THAT(m, HasSubstr("one.yaml:8: document 2: Pod/B: metadata.name:"));
  EXPECT_THAT(m, HasSubstr("two.yaml:10: document 2: Service/s: spec.ports[0].port: must be an "
                           "integer between 1 and 65535, got \"0\""));
}

TEST(ConfigLoader, ReadsFilesAndDirectoriesInOrder) {
  TempDir dir;
  std::string sub = dir.path() + "/conf";
  std::filesystem::create_directories(sub);
  TempDir* d = &dir;
  d->Write("conf/b.yml", "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n");
  d->Write("conf/a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n");
  d->Write("conf/notes.txt", "not yaml: [");
  std::string extra = d->Write("extra.yaml", kMinimal);
  LoadOptions options;
  options.log_notices = false;
  auto result = LoadConfig({extra, sub}, options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& snap = **result;
  EXPECT_THAT(snap.files, ElementsAre(extra, sub + "/a.yaml", sub + "/b.yml"));
  ASSERT_THAT(snap.objects.pods, SizeIs(2));
  EXPECT_EQ(snap.objects.pods[0].meta.name, "a");
  EXPECT_EQ(snap.objects.pods[0].meta.source.file, sub + "/a.yaml");
}

TEST(ConfigLoader, MissingPathsAndEmptyDirectoriesAreErrors) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/empty");
  LoadOptions options;
  options.log_notices = false;
  auto result = LoadConfig({dir.path() + "/nope.yaml", dir.path() + "/empty"}, options);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message,
              HasSubstr(dir.path() + "/nope.yaml: cannot read: no such file or directory"));
  EXPECT_THAT(result.error().message,
              HasSubstr(dir.path() + "/empty: the directory has no .yaml or .yml files"));
  EXPECT_FALSE(LoadConfig({}, options).ok());
}

TEST(ConfigLoader, SnapshotIsSharedAndImmutable) {
  auto result = LoadText(kMinimal);
  ASSERT_TRUE(result.ok());
  std::shared_ptr<const ConfigSnapshot> snap = *result;
  std::shared_ptr<const ConfigSnapshot> copy = snap;
  EXPECT_EQ(copy.get(), snap.get());
  EXPECT_EQ(copy->FindGateway("default", "gw"), &snap->gateways[0]);
  EXPECT_EQ(copy->FindGateway("other", "gw"), nullptr);
}

// Malformed input of every kind gets errors, never a crash or an exception: the seed's
// files, each mutated many times (characters dropped, lines swapped, indentation changed).
TEST(ConfigLoader, MutatedInputNeverCrashes) {
  std::string seed;
  for (const char* file :
       {"gateway.yaml", "inference-pool.yaml", "inference-model.yaml", "pods.yaml"}) {
    std::ifstream in(std::string(INFERGATE_SOURCE_DIR) + "/examples/seed/" + file);
    std::stringstream text;
    text << in.rdbuf();
    seed += text.str() + "---\n";
  }
  ASSERT_GT(seed.size(), 1000u);
  std::uint64_t state = 42;
  auto next = [&](std::uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  int failures = 0;
  for (int round = 0; round < 300; ++round) {
    std::string text = seed;
    int edits = 1 + static_cast<int>(next(5));
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = next(text.size());
      switch (next(4)) {
        case 0:
          text.erase(pos, 1 + next(20));
          break;
        case 1:
          text.insert(pos, std::string(1 + next(4), " :-[{\"'|\n"[next(9)]));
          break;
        case 2:
          text.insert(pos, "\n  ");
          break;
        default: {
          std::size_t other = next(text.size());
          std::swap(text[pos], text[other]);
        }
      }
    }
    auto result = LoadText(text);
    if (!result.ok()) {
      ++failures;
      EXPECT_FALSE(result.error().message.empty());
    }
  }
  EXPECT_GT(failures, 100);  // the mutations do break things
}

}  // namespace
}  // namespace infergate::config
