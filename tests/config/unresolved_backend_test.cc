// backendRefs that do not resolve: an error in file mode; in Kubernetes mode
// (LoadOptions::unresolved_backends_answer_500) the rule stays, the unresolved backend
// keeps its weight with a null Backend (its requests get 500) and a warning says why.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace infergate::config {
namespace {

using ::testing::HasSubstr;
using testing::kGateway;
using ::testing::SizeIs;
using testing::Yaml;

const std::string kRoute = Yaml(R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 3}
    - {name: gone, port: 80, weight: 1}
    - {group: inference.networking.k8s.io, kind: InferencePool, name: nopool, weight: 2}
    - {name: web, port: 81, weight: 1}
)");

TEST(ConfigUnresolvedBackend, FileModeRefuses) {
  auto errors = testing::LoadErrors(kGateway + kRoute);
  ASSERT_THAT(errors, SizeIs(3));
  EXPECT_THAT(errors[0], HasSubstr("Service \"gone\" not found in namespace \"default\""));
}

TEST(ConfigUnresolvedBackend, KubernetesModeKeepsTheRuleAndAnswers500) {
  LoadOptions options;
  options.log_notices = false;
  options.unresolved_backends_answer_500 = true;
  auto snap = LoadConfigFromString(kGateway + kRoute, "test.yaml", options);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  const auto* gw = (*snap)->FindGateway("default", "gw");
  ASSERT_NE(gw, nullptr);
  const ResolvedListener* http = nullptr;
  for (const auto& l : gw->listeners) {
    if (l.name == "http") http = &l;
  }
  ASSERT_NE(http, nullptr);
  ASSERT_THAT(http->rules, SizeIs(1));
  const auto& backends = http->rules[0].backends;
  ASSERT_THAT(backends, SizeIs(4));
  ASSERT_NE(backends[0].backend, nullptr);
  EXPECT_EQ(backends[0].weight, 3u);
  EXPECT_EQ(backends[1].backend, nullptr);
  EXPECT_EQ(backends[1].weight, 1u);
  const auto& why = http->rules[0].unresolved_backends;
  ASSERT_THAT(why, SizeIs(3));
  EXPECT_EQ(why[0], "Service \"gone\" not found in namespace \"default\"");
  EXPECT_EQ(backends[2].backend, nullptr);
  EXPECT_EQ(backends[2].weight, 2u);
  EXPECT_EQ(why[1], "InferencePool \"nopool\" not found in namespace \"default\"");
  EXPECT_EQ(backends[3].backend, nullptr);
  EXPECT_THAT(why[2], HasSubstr("has no port 81"));
  std::string warnings;
  for (const auto& w : (*snap)->warnings) warnings += w + "\n";
  EXPECT_THAT(warnings, HasSubstr("spec.rules[0].backendRefs[1].name: Service \"gone\" not found "
                                  "in namespace \"default\"; requests for this backend get 500"));
}

}  // namespace
}  // namespace infergate::config
