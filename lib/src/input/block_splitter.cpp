// Block splitting: one pass over the separators, remembering the last one that fits in the block.
#include "input/block_splitter.hpp"

#include "mtask/error.hpp"

#include <cstring>

namespace mtask {

block_splitter::block_splitter(char separator, std::size_t block_bytes)
    : separator_(separator), block_bytes_(block_bytes) {
  if (block_bytes_ == 0) throw usage_error("block size must be at least 1 byte");
}

void block_splitter::feed(std::string_view bytes) {
  // Compact once the consumed prefix dominates, so the buffer stays near one block in size.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    if (last_fit_ != npos) last_fit_ -= pos_;
    pos_ = 0;
  }
  buf_.append(bytes);
}

void block_splitter::finish() { finished_ = true; }

std::string block_splitter::take(std::size_t end, std::size_t resume) {
  std::string payload(buf_, pos_, end - pos_);
  pos_ = resume;
  scan_ = resume;
  last_fit_ = npos;
  return payload;
}

std::optional<std::string> block_splitter::next() {
  while (scan_ < buf_.size()) {
    const void* hit = std::memchr(buf_.data() + scan_, separator_, buf_.size() - scan_);
    if (hit == nullptr) {
      scan_ = buf_.size();
      break;
    }
    const auto at = static_cast<std::size_t>(static_cast<const char*>(hit) - buf_.data());
    // The records up to and including this separator take at - pos_ + 1 bytes.
    if (at - pos_ < block_bytes_) {
      last_fit_ = at;
      scan_ = at + 1;
      continue;
    }
    // This record does not fit: the block ends at the last one that did, or, when not even the
    // first record fits, it is that record alone.
    return last_fit_ != npos ? take(last_fit_, last_fit_ + 1) : take(at, at + 1);
  }
  // Everything buffered is scanned. With a full block buffered, the record in progress cannot
  // fit whatever follows: its bytes so far plus its separator exceed the block.
  if (last_fit_ != npos && buffered() >= block_bytes_) return take(last_fit_, last_fit_ + 1);
  if (finished_ && buffered() > 0) {
    // End of input: the rest fits in one block (or is one oversized record). A trailing
    // separator ends the last record, it does not start an empty one.
    const std::size_t end = buf_.back() == separator_ ? buf_.size() - 1 : buf_.size();
    return take(end, buf_.size());
  }
  return std::nullopt;
}

} // namespace mtask
