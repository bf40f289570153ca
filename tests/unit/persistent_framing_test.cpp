// Unit tests for the persistent framing (lib/src/exec/persistent_framing.cpp): task records as the
// README specifies them, and answers decoded whatever the reads cut them into, refused when their
// header is malformed or announces more than --max-output-bytes.
#include "exec/persistent_framing.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <string_view>
#include <vector>

using mtask::answer;
using mtask::answer_decoder;
using mtask::persistent_framing;
using fault = mtask::answer_decoder::fault;

namespace {

constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();

std::string task_record(persistent_framing f, std::string_view payload) {
  std::string out;
  mtask::append_task_record(f, payload, out);
  return out;
}

// Feeds `parts` to a decoder one read at a time. Returns: every answer decoded, in order.
std::vector<answer> decode(answer_decoder& d, const std::vector<std::string>& parts) {
  std::vector<answer> out;
  for (const auto& p : parts) {
    d.buffer() += p;
    d.decode(out);
  }
  return out;
}

std::vector<answer> decode_framed(const std::vector<std::string>& parts, std::size_t limit = no_limit) {
  answer_decoder d(persistent_framing::framed, limit);
  return decode(d, parts);
}

// Three answers as the README specifies them: a multi-line body, an empty one with a failure
// status, one whose body looks like a header.
const std::string stream = "0 8\nline 1\n23 0\n255 7\n12 3\nab";

void check_stream_answers(const std::vector<answer>& got) {
  REQUIRE(got.size() == 3);
  CHECK(got[0].status == 0);
  CHECK(got[0].output == "line 1\n2");
  CHECK(got[1].status == 3);
  CHECK(got[1].output.empty());
  CHECK(got[2].status == 255);
  CHECK(got[2].output == "12 3\nab");
}

} // namespace

TEST_CASE("a framed task record is its length in decimal, a newline and its bytes") {
  CHECK(task_record(persistent_framing::framed, "3") == "1\n3");
  CHECK(task_record(persistent_framing::framed, "") == "0\n");
  CHECK(task_record(persistent_framing::framed, "a\nb\n") == "4\na\nb\n");
  CHECK(task_record(persistent_framing::framed, std::string(1000, 'x')) == "1000\n" + std::string(1000, 'x'));
}

TEST_CASE("a line task record is the task and a newline") {
  CHECK(task_record(persistent_framing::line, "3") == "3\n");
  CHECK(task_record(persistent_framing::line, "") == "\n");
}

TEST_CASE("framed answers decode from one read") {
  answer_decoder d(persistent_framing::framed, no_limit);
  check_stream_answers(decode(d, {stream}));
  CHECK_FALSE(d.mid_answer());
  CHECK(d.failed() == fault::none);
}

TEST_CASE("framed answers decode the same however the reads cut them") {
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    CAPTURE(cut);
    check_stream_answers(decode_framed({stream.substr(0, cut), stream.substr(cut)}));
  }
  std::vector<std::string> bytes;
  for (const char c : stream) bytes.emplace_back(1, c);
  check_stream_answers(decode_framed(bytes));
}

TEST_CASE("a framed answer is decoded only once all its bytes are there") {
  answer_decoder d(persistent_framing::framed, no_limit);
  CHECK(decode(d, {"0 5\nab"}).empty());
  CHECK(d.mid_answer());
  CHECK(d.describe_partial() == "after 2 of its 5 bytes");
  const auto got = decode(d, {"cde"});
  REQUIRE(got.size() == 1);
  CHECK(got[0].output == "abcde");
  CHECK_FALSE(d.mid_answer());
}

TEST_CASE("output that ends inside a header is described as such") {
  answer_decoder d(persistent_framing::framed, no_limit);
  CHECK(decode(d, {"0 1"}).empty());
  CHECK(d.mid_answer());
  CHECK(d.describe_partial() == "inside its header '0 1'");
  CHECK(d.failed() == fault::none);
}

TEST_CASE("a malformed framed header is a fault that stops decoding") {
  const char* const bad[] = {"hello\n",
                             "1\n",
                             "1 \n",
                             " 1 2\n",
                             "1  2\n",
                             "1 2 \n",
                             "-1 2\n",
                             "+1 2\n",
                             "1 +2\n",
                             "1 0x10\n",
                             "1 2\r\n",
                             "1234 1\n",
                             "x 1\n",
                             "1 1e3\n",
                             "0 -0\n",
                             "\n",
                             "0 123456789012345678901\n"};
  for (const char* header : bad) {
    CAPTURE(header);
    answer_decoder d(persistent_framing::framed, no_limit);
    CHECK(decode(d, {header, "0 1\nx"}).empty());
    CHECK(d.failed() == fault::malformed);
    CHECK_FALSE(d.mid_answer());
  }
}

TEST_CASE("a malformed header's fault quotes it and says what was expected") {
  answer_decoder d(persistent_framing::framed, no_limit);
  const auto got = decode(d, {"0 2\nok", "debug: x=1\n0 1\nz"});
  REQUIRE(got.size() == 1); // the answer before it stands
  CHECK(got[0].output == "ok");
  CHECK(d.failed() == fault::malformed);
  CHECK(d.fault_text() == "malformed answer header 'debug: x=1': expected '<status> <length>' and a newline");
}

TEST_CASE("a status above 255 is malformed") {
  answer_decoder d(persistent_framing::framed, no_limit);
  decode(d, {"256 0\n"});
  CHECK(d.failed() == fault::malformed);
  CHECK(d.fault_text() == "malformed answer header '256 0': the status must be 0 to 255");
}

TEST_CASE("a header with no newline in its first 32 bytes is malformed, even before more arrives") {
  answer_decoder d(persistent_framing::framed, no_limit);
  decode(d, {std::string(31, '1')});
  CHECK(d.failed() == fault::none);
  decode(d, {"1"});
  CHECK(d.failed() == fault::malformed);
  CHECK(d.fault_text() == "malformed answer header '" + std::string(32, '1') + "': no newline within 32 bytes");
}

TEST_CASE("the longest header allowed decodes") {
  const auto got = decode_framed({"255 00000000000000000001\nx"});
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == 255);
  CHECK(got[0].output == "x");
}

TEST_CASE("an answer longer than the limit is refused from its header, before its body arrives") {
  answer_decoder d(persistent_framing::framed, 1000);
  CHECK(decode(d, {"0 1000\n" + std::string(1000, 'x')}).size() == 1);
  CHECK(decode(d, {"0 1001\n"}).empty());
  CHECK(d.failed() == fault::too_large);
  CHECK(d.fault_text() == "the answer's header announced 1001 bytes");
  CHECK(decode(d, {std::string(1001, 'x')}).empty()); // nothing after the fault is decoded
  CHECK(d.buffer().empty());
}

TEST_CASE("a length past 64 bits is too large, not malformed") {
  answer_decoder d(persistent_framing::framed, no_limit);
  decode(d, {"0 99999999999999999999\n"});
  CHECK(d.failed() == fault::too_large);
}

TEST_CASE("the framed read limit leaves room for a header before the largest body") {
  CHECK(answer_decoder(persistent_framing::framed, 1000).read_limit() == 1000 + answer_decoder::max_header_bytes);
  CHECK(answer_decoder(persistent_framing::framed, no_limit).read_limit() == no_limit);
  CHECK(answer_decoder(persistent_framing::line, 1000).read_limit() == 1000);
}

TEST_CASE("line answers are lines, however the reads cut them") {
  const std::string lines = "r1\n\nr3\n";
  for (std::size_t cut = 0; cut <= lines.size(); ++cut) {
    CAPTURE(cut);
    answer_decoder d(persistent_framing::line, no_limit);
    const auto got = decode(d, {lines.substr(0, cut), lines.substr(cut)});
    REQUIRE(got.size() == 3);
    CHECK(got[0].output == "r1");
    CHECK(got[1].output.empty());
    CHECK(got[2].output == "r3");
    CHECK(got[2].status == 0);
  }
}

TEST_CASE("a line answer without its newline yet is in progress") {
  answer_decoder d(persistent_framing::line, no_limit);
  CHECK(decode(d, {"r1\nr2"}).size() == 1);
  CHECK(d.mid_answer());
  CHECK(d.describe_partial() == "after 2 bytes without a newline");
}

TEST_CASE("a line longer than the limit is too large once it passes it") {
  answer_decoder d(persistent_framing::line, 4);
  CHECK(decode(d, {"1234\n1234"}).size() == 1);
  CHECK(d.failed() == fault::none);
  decode(d, {"5"});
  CHECK(d.failed() == fault::too_large);
  CHECK(d.fault_text().empty());
}

TEST_CASE("bytes quoted for a message are escaped and cut") {
  CHECK(mtask::quote_bytes("extra") == "'extra'");
  CHECK(mtask::quote_bytes("a\nb\t'\\\x7f") == "'a\\nb\\x09\\'\\\\\\x7f'");
  CHECK(mtask::quote_bytes("abcdef", 3) == "'abc'...");
}
