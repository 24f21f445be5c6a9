// The provider over HTTPS: the fake API server behind a TLS front (tests/kube/tls_front.*)
// with certificates made at run time by the openssl command. A kubeconfig with the CA as
// certificate-authority-data and a bearer token lists and watches; one with a client
// certificate and key (data or files; the front requires and verifies one signed by the
// CA, and the fake asks for no token) does too; no client certificate, or one of another
// CA, fails with an error that says so; a kubeconfig trusting another CA fails with an
// error that says the certificate was not verified. Stop returns at once, also while
// requests wait in a TLS handshake with a server that never answers.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "kube/provider.h"
#include "tests/kube/kube_fixture.h"
#include "tests/kube/tls_front.h"
#include "tests/support/base64.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// Stop must end requests in flight at once, not after the client's 30 s read timeout; the
// bound leaves room for a loaded sanitizer run.
constexpr auto kStopBound = 5000ms;

class KubeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "kube_tls_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    std::string error;
    ASSERT_TRUE(MakeTestCertificates(dir_, &error)) << error;
    RegisterWatchedTypes(api_);
    api_.RequireToken("tls-t0ken");
    ASSERT_TRUE(api_.Start());
    api_.Apply(PoolObject(8000));
    api_.Apply(PodObject("pod-0", "10.0.0.1", true, 8000));
    log_ = std::make_shared<std::ostringstream>();
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_);
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  void TearDown() override {
    StopProvider();
    front_.Stop();
    api_.Stop();
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    std::filesystem::remove_all(dir_);
  }

  enum class Client { kToken, kCertificate };

  // Starts the TLS front before the fake. With kCertificate the front requires a client
  // certificate signed by the CA and the fake asks for no token, so the certificate is
  // the only credential.
  void StartFront(Client client) {
    if (client == Client::kCertificate) api_.RequireToken("");
    const std::string client_ca = client == Client::kCertificate ? dir_ + "/ca.crt" : "";
    ASSERT_TRUE(front_.Start(api_.port(), dir_ + "/server.crt", dir_ + "/server.key", client_ca))
        << front_.error();
  }

  enum class User { kToken, kCertData, kCertFiles, kOtherCert };

  // A kubeconfig for `server` (the front by default): the CA as data, and a bearer token
  // or a client certificate (inline data, files, or one of the unrelated CA).
  std::string Kubeconfig(const std::string& ca_file, User user, std::string server = "") {
    if (server.empty()) server = front_.url();
    std::string path = dir_ + "/kubeconfig-" + std::to_string(static_cast<int>(user));
    std::ofstream out(path);
    out << "apiVersion: v1\nkind: Config\ncurrent-context: tls\ncontexts:\n- name: tls\n"
           "  context: {cluster: fake, user: tester}\nclusters:\n- name: fake\n  cluster:\n"
           "    server: "
        << server << "\n    certificate-authority-data: " << EncodeBase64(ReadFile(ca_file))
        << "\nusers:\n- name: tester\n  user:\n";
    switch (user) {
      case User::kToken:
        out << "    token: tls-t0ken\n";
        break;
      case User::kCertData:
        out << "    client-certificate-data: " << EncodeBase64(ReadFile(dir_ + "/client.crt"))
            << "\n    client-key-data: " << EncodeBase64(ReadFile(dir_ + "/client.key")) << "\n";
        break;
      case User::kCertFiles:
        // A path relative to the kubeconfig and an absolute one.
        out << "    client-certificate: client.crt\n    client-key: " << dir_ << "/client.key\n";
        break;
      case User::kOtherCert:
        out << "    client-certificate-data: " << EncodeBase64(ReadFile(dir_ + "/other-client.crt"))
            << "\n    client-key-data: " << EncodeBase64(ReadFile(dir_ + "/other-client.key"))
            << "\n";
        break;
    }
    return path;
  }

  // Stops the provider; a Stop that hangs ends the test program with a message rather
  // than holding the suite until its timeout. Returns how long Stop took.
  std::chrono::milliseconds StopProvider(std::chrono::seconds bound = 10s) {
    if (!provider_) return 0ms;
    auto t0 = std::chrono::steady_clock::now();
    auto done = std::async(std::launch::async, [p = provider_.get()] { p->Stop(); });
    if (done.wait_for(bound) != std::future_status::ready) {
      std::fprintf(stderr, "KubernetesProvider::Stop did not return within %lld s\n",
                   static_cast<long long>(bound.count()));
      std::_Exit(1);
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }

  Result<std::shared_ptr<const config::ConfigSnapshot>> StartProvider(const std::string& kc) {
    auto access = kube::KubeconfigAccess(kc);
    if (!access.ok()) return access.error();
    kube::ProviderOptions o;
    o.access = *access;
    o.write_status = false;
    o.kinds = {"Pod", "InferencePool"};
    o.initial_sync_timeout = initial_sync_timeout_;
    o.reflector.backoff_min = 50 * kNanosPerMilli;
    o.reflector.backoff_max = 500 * kNanosPerMilli;
    auto p = kube::KubernetesProvider::Create(o);
    if (!p.ok()) return p.error();
    provider_ = std::move(*p);
    auto first = provider_->Start();
    return first;
  }

  static std::vector<std::string> Endpoints(const config::ConfigSnapshot& s) {
    std::vector<std::string> out;
    if (const auto* pool = s.FindPool("default", "pool")) {
      for (const auto& e : pool->endpoints) out.push_back(e.id);
    }
    return out;
  }

  std::string dir_;
  FakeApiServer api_;
  TlsFront front_;
  std::unique_ptr<kube::KubernetesProvider> provider_;
  TimeNs initial_sync_timeout_ = 3 * kNanosPerSecond;
  std::shared_ptr<std::ostringstream> log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

TEST_F(KubeTlsTest, CaDataAndBearerToken) {
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kToken));
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kToken));
  ASSERT_TRUE(first.ok()) << first.error().message << "\n" << log_->str();
  EXPECT_EQ(Endpoints(**first), std::vector<std::string>{"10.0.0.1:8000"});
  EXPECT_GE(api_.count("list pods"), 1);
  // The watch runs over TLS too.
  std::shared_ptr<const config::ConfigSnapshot> latest;
  std::mutex mu;
  provider_->Follow([&](std::shared_ptr<const config::ConfigSnapshot> s) {
    std::lock_guard lock(mu);
    latest = std::move(s);
    return Ok();
  });
  api_.Apply(PodObject("pod-1", "10.0.0.2", true, 8000));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      seen = latest && Endpoints(*latest).size() == 2;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(seen) << log_->str();
  StopProvider();
  EXPECT_EQ(log_->str().find("tls-t0ken"), std::string::npos);
}

TEST_F(KubeTlsTest, WrongCaFailsWithAClearError) {
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kToken));
  auto first = StartProvider(Kubeconfig(dir_ + "/other-ca.crt", User::kToken));
  EXPECT_FALSE(first.ok());
  StopProvider();
  const std::string log = log_->str();
  EXPECT_NE(log.find("TLS handshake with " + front_.url()), std::string::npos) << log;
  EXPECT_NE(log.find("certificate verify failed"), std::string::npos) << log;
  EXPECT_EQ(api_.count("list pods"), 0);
}

TEST_F(KubeTlsTest, ClientCertificateDataAuthenticates) {
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kCertificate));
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kCertData));
  ASSERT_TRUE(first.ok()) << first.error().message << "\n" << log_->str();
  EXPECT_EQ(Endpoints(**first), std::vector<std::string>{"10.0.0.1:8000"});
  EXPECT_EQ(front_.failed_handshakes(), 0) << log_->str();
  EXPECT_NE(front_.last_client_subject().find("CN=system:serviceaccount:x:y"), std::string::npos)
      << front_.last_client_subject();
  // Stop ends the watches that are open over TLS, and logs nothing about them.
  EXPECT_LT(StopProvider(), kStopBound);
  EXPECT_EQ(log_->str().find("watch pods"), std::string::npos) << log_->str();
}

TEST_F(KubeTlsTest, ClientCertificateFilesAuthenticate) {
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kCertificate));
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kCertFiles));
  ASSERT_TRUE(first.ok()) << first.error().message << "\n" << log_->str();
  EXPECT_EQ(Endpoints(**first), std::vector<std::string>{"10.0.0.1:8000"});
  EXPECT_EQ(front_.failed_handshakes(), 0) << log_->str();
  EXPECT_LT(StopProvider(), kStopBound);
}

TEST_F(KubeTlsTest, MissingClientCertificateFailsWithAClearError) {
  initial_sync_timeout_ = 1 * kNanosPerSecond;
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kCertificate));
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kToken));
  EXPECT_FALSE(first.ok());
  EXPECT_LT(StopProvider(), kStopBound);
  EXPECT_GE(front_.failed_handshakes(), 1);
  EXPECT_EQ(api_.count("list pods"), 0);
  const std::string log = log_->str();
  EXPECT_NE(log.find("the API server requires a client certificate; kubeconfig " + dir_ +
                     "/kubeconfig-0 context tls has none"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("tls-t0ken"), std::string::npos);
}

TEST_F(KubeTlsTest, ClientCertificateOfAnotherCaIsRefusedWithAClearError) {
  initial_sync_timeout_ = 1 * kNanosPerSecond;
  ASSERT_NO_FATAL_FAILURE(StartFront(Client::kCertificate));
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kOtherCert));
  EXPECT_FALSE(first.ok());
  EXPECT_LT(StopProvider(), kStopBound);
  EXPECT_GE(front_.failed_handshakes(), 1);
  EXPECT_EQ(api_.count("list pods"), 0);
  const std::string log = log_->str();
  EXPECT_NE(log.find("the API server refused the client certificate of kubeconfig " + dir_ +
                     "/kubeconfig-3 context tls"),
            std::string::npos)
      << log;
}

// A server that takes connections and never answers the TLS handshake (a listening socket
// nobody accepts on): every LIST waits in its handshake. Stop must end them at once rather
// than after the 30 s read timeout.
TEST_F(KubeTlsTest, StopEndsRequestsWaitingInATlsHandshake) {
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 64), 0);
  socklen_t len = sizeof addr;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  initial_sync_timeout_ = 1 * kNanosPerSecond;
  auto first = StartProvider(Kubeconfig(dir_ + "/ca.crt", User::kToken, server));
  EXPECT_FALSE(first.ok());
  EXPECT_LT(StopProvider(), kStopBound);
  ::close(silent);
}

}  // namespace
}  // namespace infergate::testing
