// The framing of a persistent command's conversation (--persistent=line|framed): a task encoded
// for its stdin, its stdout decoded into answers. Pure: no descriptors, no processes. The README's
// "Persistent workers" section is the specification.
#pragma once

#include "mtask/worker.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

// Appends the record of a task to `out`. line: the payload and '\n' (the caller refuses a payload
// that holds one); framed: the payload's length in ASCII decimal, '\n', the payload.
void append_task_record(persistent_framing f, std::string_view payload, std::string& out);

struct answer {
  int status = 0; // framed: the status in its header (0 to 255); line: always 0
  std::string output;
};

// Decodes a command's stdout, however it is cut into reads, into answers. The first fault ends
// decoding for good: nothing after it can be matched to a task.
class answer_decoder {
 public:
  enum class fault : std::uint8_t {
    none,
    malformed, // framed: a header that is not "<status> <length>\n"
    too_large, // an answer longer than max_output_bytes (framed: known from its header)
  };

  answer_decoder(persistent_framing f, std::size_t max_output_bytes);

  // The bytes read and not yet decoded: a reader appends what the command wrote, then decode()s.
  std::string& buffer() { return buf_; }
  // A reader that stops once buffer() holds more than this has read enough to decode or refuse
  // the answer in progress (so a flood costs the limit, not the flood).
  [[nodiscard]] std::size_t read_limit() const;

  // Appends to `out`, oldest first, every complete answer at the front of buffer(), removing its
  // bytes; stops at the first fault.
  void decode(std::vector<answer>& out);

  [[nodiscard]] fault failed() const { return fault_; }
  // The fault in words, for the tasks it fails: "malformed answer header 'hello': ...".
  [[nodiscard]] const std::string& fault_text() const { return fault_text_; }
  // True while part of an answer (some of its header or body) has arrived and the rest has not.
  [[nodiscard]] bool mid_answer() const { return in_body_ || !buf_.empty(); }
  // Where the answer in progress stands, for output that ends there: "after 2 of its 10 bytes".
  [[nodiscard]] std::string describe_partial() const;

  // A framed header is at most this long, its '\n' included ("255 " and 20 digits fit).
  static constexpr std::size_t max_header_bytes = 32;

 private:
  void decode_lines(std::vector<answer>& out);
  void decode_framed(std::vector<answer>& out);
  // Parses the header `h` (without its '\n') into status_ and length_, or records the fault.
  bool parse_header(std::string_view h);

  persistent_framing framing_;
  std::size_t max_output_bytes_;
  std::string buf_;
  bool in_body_ = false; // framed: the header of the answer in progress is parsed
  int status_ = 0;
  std::uint64_t length_ = 0;
  fault fault_ = fault::none;
  std::string fault_text_;
};

// Returns: `bytes` for a message, quoted and cut to `max` bytes, control bytes escaped ('\n' as
// \n): 'hello\n' or 'abc...'.
std::string quote_bytes(std::string_view bytes, std::size_t max = 40);

} // namespace mtask
