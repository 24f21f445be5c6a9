// The gateway's rules on a request head hold for the whole head however its bytes arrive
// (http/head_guard.h): Beast parses a request line complete in the first read, and whole
// field lines, before the head's end is there, so checks on its last step alone accepted
// in pieces what they refused in one read (both found by request_fuzz).
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

// An obsolete line fold in the first field is refused however the head arrives, also when
// the request line and that field are consumed before the head's end is there.
TEST(RequestIntake, AnObsoleteLineFoldIsRefusedInOneReadAsInPieces) {
  const std::string head =
      "GET /v1/models HTTP/1.1\r\nHost: x\r\n folded\r\nX-A: " + std::string(60, 'a') +
      "\r\nX-B: b\r\n\r\n";
  for (std::size_t piece : {0, 1, 7, 25, 35, 64, 127}) {
    SCOPED_TRACE("piece " + std::to_string(piece));
    EXPECT_EQ(Reject(head, piece), 400);
  }
}

}  // namespace
}  // namespace infergate::http
