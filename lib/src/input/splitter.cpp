// Record splitting: scans for separators once, hands out payloads without re-scanning.
#include "input/splitter.hpp"

#include "mtask/error.hpp"

#include <cstring>

namespace mtask {

record_splitter::record_splitter(split_options opts) : opts_(opts) {
  if (opts_.records_per_task == 0) throw usage_error("records per task must be at least 1");
}

void record_splitter::feed(std::string_view bytes) {
  // Compact once the consumed prefix dominates, so the buffer stays near one chunk in size.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  buf_.append(bytes);
}

void record_splitter::finish() { finished_ = true; }

std::optional<std::string> record_splitter::next() {
  while (records_seen_ < opts_.records_per_task) {
    const void* hit =
        scan_ < buf_.size() ? std::memchr(buf_.data() + scan_, opts_.separator, buf_.size() - scan_) : nullptr;
    if (hit == nullptr) {
      scan_ = buf_.size();
      break;
    }
    scan_ = static_cast<std::size_t>(static_cast<const char*>(hit) - buf_.data()) + 1;
    ++records_seen_;
  }
  std::size_t end = 0;
  if (records_seen_ == opts_.records_per_task) {
    end = scan_ - 1; // drop the final separator
  } else if (finished_ && (records_seen_ > 0 || scan_ > pos_)) {
    // End of input: whatever is left is the last payload. A trailing separator ends the
    // last record, it does not start an empty one.
    end = scan_ > pos_ && buf_[scan_ - 1] == opts_.separator ? scan_ - 1 : scan_;
  } else {
    return std::nullopt;
  }
  std::string payload(buf_, pos_, end - pos_);
  pos_ = scan_;
  records_seen_ = 0;
  return payload;
}

} // namespace mtask
