// `infergate check`, run as a process: exit codes and what it prints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBinary = INFERGATE_BIN;
const std::string kExamples = std::string(INFERGATE_SOURCE_DIR) + "/examples";

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the binary with args (already shell-quoted where needed), capturing both streams.
ProcessResult Check(const std::string& args) {
  std::string err_path =
      std::filesystem::temp_directory_path() / ("infergate_check_err_" + std::to_string(getpid()));
  std::string command = kBinary + " check " + args + " 2>" + err_path;
  ProcessResult run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) run.out.append(buf, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.err = ReadFile(err_path);
  std::filesystem::remove(err_path);
  return run;
}

class ConfigCheckCliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("infergate_check_bad_" + std::to_string(getpid()) + ".yaml");
    std::ofstream(path_) << "apiVersion: gateway.networking.k8s.io/v1\n"
                            "kind: Gateway\n"
                            "metadata: {name: gw}\n"
                            "spec:\n"
                            "  listeners: [{name: http, protocol: HTTPS, port: 8080}]\n"
                            "---\n"
                            "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
                            "kind: InferenceModel\n"
                            "metadata: {name: m}\n"
                            "spec: {modelName: qwq, poolRef: {name: missing}}\n";
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
};

TEST(ConfigCheckCli, SeedExampleIsValidAndDescribed) {
  ProcessResult run = Check("-f " + kExamples + "/seed");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out,
              HasSubstr("Configuration OK: 5 files, 1 Gateway, 2 listeners, 1 InferencePool."));
  EXPECT_THAT(run.out, HasSubstr("listener http  127.0.0.1:8080  HTTP"));
  EXPECT_THAT(run.out,
              HasSubstr("backend Service default/qwq-dist-v1 port 8000  weight 1 (100.0%)"));
  EXPECT_THAT(run.out, HasSubstr("listener llm-gw  127.0.0.1:8081  HTTP"));
  EXPECT_THAT(run.out, HasSubstr("backend InferencePool default/reasoning-pool  weight 1"));
  EXPECT_THAT(
      run.out,
      HasSubstr("endpoint 127.0.0.4:8000  pod default/qwq-dist-v1-distributed-serving-2  ready"));
  EXPECT_THAT(run.out, Not(HasSubstr("127.0.1.")));  // workers are not endpoints
  EXPECT_THAT(run.out, HasSubstr("request timeout 24h  body limit 20 MiB"));
  EXPECT_THAT(run.out, HasSubstr("failure mode FailClose"));
  EXPECT_THAT(run.out, HasSubstr("model qwq  Critical"));
  EXPECT_THAT(run.out, HasSubstr("skipped leaderworkerset.x-k8s.io/v1/LeaderWorkerSet "
                                 "qwq-dist-v1-distributed-serving: kind not used by infergate"));
  EXPECT_EQ(run.err, "");  // skipped objects are in the report, not logged twice
}

TEST(ConfigCheckCli, SeveralFilesAndJsonOutput) {
  ProcessResult run =
      Check("-f " + kExamples + "/seed/gateway.yaml -f " + kExamples +
            "/seed/model-server.yaml -f " + kExamples + "/seed/pods.yaml --output json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["valid"], true);
  EXPECT_EQ(json["files"].size(), 3u);
  const auto& http = json["gateways"][0]["listeners"][0];
  EXPECT_EQ(http["name"], "http");
  EXPECT_EQ(http["rules"][0]["backends"][0]["id"], "default/qwq-dist-v1");
  EXPECT_EQ(http["rules"][0]["backends"][0]["endpoints"].size(), 3u);
  // Without the pool's file, port 8081 has no route.
  EXPECT_EQ(json["gateways"][0]["listeners"][1]["rules"].size(), 0u);
  EXPECT_EQ(json["pools"].size(), 0u);
  EXPECT_EQ(json["skipped"].size(), 2u);
}

TEST_F(ConfigCheckCliBadInput, ErrorsExitTwoAndNameEveryProblem) {
  ProcessResult run = Check("-f " + path_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, HasSubstr("the configuration has 2 errors"));
  EXPECT_THAT(run.err, HasSubstr(path_ + ":5: document 1: Gateway/gw: spec.listeners[0].tls: "
                                         "is required for an HTTPS listener"));
  EXPECT_THAT(run.err, HasSubstr(path_ + ":10: document 2: InferenceModel/m: spec.poolRef.name: "
                                         "InferencePool \"missing\" not found in namespace "
                                         "\"default\""));
}

TEST_F(ConfigCheckCliBadInput, ErrorsAsJson) {
  ProcessResult run = Check("-f " + path_ + " -o json");
  EXPECT_EQ(run.exit_code, 2);
  auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["valid"], false);
  ASSERT_EQ(json["errors"].size(), 2u);
  EXPECT_THAT(json["errors"][0].get<std::string>(), HasSubstr("spec.listeners[0].tls"));
}

// A bare profile name is checked by building the pool's scheduler, as serve does.
TEST(ConfigCheckCli, UnknownSchedulingProfileIsAnError) {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("infergate_check_profile_" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
                         "kind: InferencePool\n"
                         "metadata:\n  name: p\n"
                         "  annotations: {infergate.io/scheduling-profile: fastest}\n"
                         "spec:\n  selector: {app: llm}\n  targetPortNumber: 8000\n";
  ProcessResult run = Check("-f " + path);
  std::filesystem::remove(path);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("InferencePool default/p: scheduling profile: "));
  EXPECT_THAT(run.err, HasSubstr("fastest"));
}

TEST(ConfigCheckCli, UsageErrorsExitTwo) {
  ProcessResult none = Check("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("--filename is required"));
  EXPECT_EQ(Check("-f " + kExamples + "/seed --output yaml").exit_code, 2);
  ProcessResult missing = Check("-f /nonexistent/config.yaml");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/config.yaml: cannot read"));
}

TEST(ConfigCheckCli, HelpSaysWhatItDoes) {
  ProcessResult run = Check("--help");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("Validate a configuration and print what it resolves to"));
  EXPECT_THAT(run.out, HasSubstr("--filename"));
  EXPECT_THAT(run.out, HasSubstr("--output"));
}

}  // namespace
