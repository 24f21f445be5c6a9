// The request head limit holds for the whole head however its bytes arrive: Beast alone
// parses a request line that is complete in the first read and then allows the fields the
// whole limit again, so the same head was accepted in one read and refused with 431 in
// several (found by request_fuzz).
#include "http/request_intake.h"

#include <gtest/gtest.h>

#include <string>

namespace infergate::http {
namespace {

constexpr IntakeLimits kLimits{1024, 2048};

// A head of exactly `size` bytes: a 40-byte request line, then fields padded to fit.
std::string HeadOfSize(std::size_t size) {
  std::string head = "GET /v1/models/aaaaaaaaaaaaaaa HTTP/1.1\r\n";  // 40 bytes
  head += "Host: x\r\n";
  const std::string name = "X-Pad: ";
  const std::size_t fixed = head.size() + name.size() + 2 + 2;  // field CRLF, final CRLF
  head += name + std::string(size - fixed, 'a') + "\r\n\r\n";
  EXPECT_EQ(head.size(), size);
  return head;
}

int Reject(const std::string& bytes, std::size_t piece) {
  RequestParser parser;
  return ParseBufferedRequest(parser, bytes, kLimits, piece, true).reject;
}

TEST(RequestIntake, AHeadOverTheLimitIsRefusedInOneReadAsInPieces) {
  // 1,060 bytes: the fields alone (1,020) are within the limit, the head is not.
  const std::string head = HeadOfSize(1060);
  for (std::size_t piece : {0, 1, 7, 35, 64, 127, 512}) {
    SCOPED_TRACE("piece " + std::to_string(piece));
    EXPECT_EQ(Reject(head, piece), 431);
  }
}

TEST(RequestIntake, AHeadAtTheLimitIsAcceptedInOneReadAsInPieces) {
  const std::string head = HeadOfSize(1024);
  for (std::size_t piece : {0, 1, 7, 35, 64, 127, 512}) {
    SCOPED_TRACE("piece " + std::to_string(piece));
    RequestParser parser;
    const BufferedIntake in = ParseBufferedRequest(parser, head, kLimits, piece, true);
    EXPECT_EQ(in.reject, 0);
    EXPECT_TRUE(in.complete);
    EXPECT_EQ(in.consumed, head.size());
  }
}

}  // namespace
}  // namespace infergate::http
