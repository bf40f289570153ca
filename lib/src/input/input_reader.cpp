// input_reader: read(2) in chunks into the splitter.
#include "input/input_reader.hpp"

#include "mtask/error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

namespace mtask {

namespace {

std::variant<record_splitter, block_splitter> make_splitter(split_options opts) {
  if (opts.block_bytes > 0) return block_splitter(opts.separator, opts.block_bytes);
  return record_splitter(opts);
}

} // namespace

input_reader::input_reader(const std::string& path, split_options opts)
    : name_(path.empty() || path == "-" ? "stdin" : path), splitter_(make_splitter(opts)) {
  if (name_ != "stdin") {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    owned_ = true;
  }
}

input_reader::~input_reader() {
  if (owned_) ::close(fd_);
}

void input_reader::read_chunk() {
  if (eof_) return;
  char buf[chunk_bytes];
  ssize_t n;
  do {
    n = ::read(fd_, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return;
    throw error(fmt::format("cannot read '{}': {}", name_, std::strerror(errno)));
  }
  if (n == 0) {
    eof_ = true;
    std::visit([](auto& s) { s.finish(); }, splitter_);
    return;
  }
  std::visit([&](auto& s) { s.feed(std::string_view(buf, static_cast<std::size_t>(n))); }, splitter_);
}

} // namespace mtask
