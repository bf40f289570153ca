// Unit tests for the output rule, output_writer and background_writer (lib/src/sink/output_writer.cpp),
// writing to a pipe.
#include "sink/output_writer.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

using mtask::append_result;
using mtask::output_writer;

namespace {

// A pipe closed on scope exit; the read end is non-blocking so an empty pipe reads as "".
struct test_pipe {
  int read_fd = -1;
  int write_fd = -1;
  test_pipe() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    read_fd = fds[0];
    write_fd = fds[1];
    REQUIRE(::fcntl(read_fd, F_SETFL, O_NONBLOCK) == 0);
  }
  ~test_pipe() {
    close_read();
    close_write();
  }
  test_pipe(const test_pipe&) = delete;
  test_pipe& operator=(const test_pipe&) = delete;
  void close_read() {
    if (read_fd >= 0) ::close(read_fd);
    read_fd = -1;
  }
  void close_write() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
  // Blocking reads (the read end made blocking first) until `n` bytes, or end of file.
  std::string read_exactly(std::size_t n) const { return read_blocking(n); }
  std::string read_until_eof() const { return read_blocking(std::string::npos); }
  std::string read_blocking(std::size_t n) const {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t got = ::read(read_fd, buf, std::min(sizeof buf, n - out.size()));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  // Everything in the pipe now.
  std::string drain() const {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(read_fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

// Ignores SIGPIPE for its lifetime, so a write to a closed pipe fails with EPIPE instead.
struct ignore_sigpipe {
  struct sigaction old {};
  ignore_sigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old);
  }
  ~ignore_sigpipe() { ::sigaction(SIGPIPE, &old, nullptr); }
  ignore_sigpipe(const ignore_sigpipe&) = delete;
  ignore_sigpipe& operator=(const ignore_sigpipe&) = delete;
};

std::string appended(std::string_view result, std::string out = {}) {
  append_result(out, result);
  return out;
}

} // namespace

TEST_CASE("output rule writes a result that ends in a newline as it is") {
  CHECK(appended("abc\n") == "abc\n");
  CHECK(appended("a\nb\n") == "a\nb\n");
  CHECK(appended("\n") == "\n");
  CHECK(appended("two\n\n") == "two\n\n");
}

TEST_CASE("output rule adds a newline to a result that lacks one") {
  CHECK(appended("abc") == "abc\n");
  CHECK(appended("a\nb") == "a\nb\n");
  CHECK(appended("crlf\r") == "crlf\r\n");
  CHECK(appended(std::string_view("a\0b", 3)) == std::string("a\0b\n", 4));
}

TEST_CASE("output rule writes nothing for an empty result") {
  CHECK(appended("").empty());
  CHECK(appended("", "kept\n") == "kept\n");
}

TEST_CASE("output rule appends after what is already there") {
  std::string out;
  append_result(out, "one");
  append_result(out, "");
  append_result(out, "two\n");
  append_result(out, "three");
  CHECK(out == "one\ntwo\nthree\n");
}

TEST_CASE("output writer holds results until flushed, then writes them by the output rule") {
  test_pipe p;
  output_writer w(p.write_fd);
  w.write("one");
  w.write("");
  w.write("two\n");
  w.write(std::string_view("bin\0ary", 7));
  CHECK_FALSE(w.should_flush());
  CHECK(p.drain().empty());
  w.flush();
  CHECK(p.drain() == std::string("one\ntwo\nbin\0ary\n", 16));
  w.flush();
  CHECK(p.drain().empty());
  w.write("three");
  w.flush();
  CHECK(p.drain() == "three\n");
}

TEST_CASE("output writer does not flush by itself below 64 KiB") {
  test_pipe p;
  output_writer w(p.write_fd);
  w.write(std::string((1u << 16) - 2, 'a')); // 64 KiB less one byte, with the newline
  CHECK_FALSE(w.should_flush());
  CHECK(p.drain().empty());
}

TEST_CASE("output writer flushes by itself once 64 KiB are buffered") {
  test_pipe p;
  // The pipe holds less than a flush: read concurrently, blocking, until the writer closes.
  REQUIRE(::fcntl(p.read_fd, F_SETFL, 0) == 0);
  std::string received;
  std::thread reader([&] { received = p.read_until_eof(); });
  {
    output_writer w(p.write_fd);
    w.write(std::string(1000, 'a'));
    CHECK_FALSE(w.should_flush());
    w.write(std::string((1u << 16) - 1002, 'b')); // exactly 64 KiB with the two added newlines
    CHECK_FALSE(w.should_flush());
    // No flush() here: what the reader gets, the writer flushed by itself.
  }
  p.close_write();
  reader.join();
  CHECK(received.size() == (1u << 16));
  CHECK(received == std::string(1000, 'a') + "\n" + std::string((1u << 16) - 1002, 'b') + "\n");
}

TEST_CASE("output writer reports a closed pipe as an error") {
  ignore_sigpipe guard;
  test_pipe p;
  p.close_read();
  output_writer w(p.write_fd);
  w.write("lost");
  CHECK_THROWS_WITH_AS(w.flush(), "cannot write to stdout: Broken pipe", mtask::error);
}

TEST_CASE("output writer reports a bad descriptor as an error") {
  output_writer w(-1);
  w.write("x");
  CHECK_THROWS_WITH_AS(w.flush(), "cannot write to stdout: Bad file descriptor", mtask::error);
}

TEST_CASE("output writer with nothing buffered writes nothing, even to a bad descriptor") {
  output_writer w(-1);
  w.write("");
  CHECK_NOTHROW(w.flush());
}

TEST_CASE("background writer never blocks its caller on a full pipe, and finishes once the reader reads") {
  test_pipe p;
  REQUIRE(::fcntl(p.read_fd, F_SETFL, 0) == 0); // the reader below blocks
  std::string expected;
  {
    mtask::background_writer w(p.write_fd);
    // 1 MiB into a pipe that holds 64 KiB, nobody reading: every call returns at once.
    for (int i = 0; i < 1024; ++i) {
      const auto line = std::string(1023, static_cast<char>('a' + i % 26));
      w.write(line);
      expected += line + "\n";
      w.flush();
    }
    CHECK(w.backlog() > 0);
    CHECK_FALSE(w.drained());
    CHECK_FALSE(w.wait_drained(std::chrono::milliseconds(20))); // still stuck: nobody reads

    std::string received;
    std::thread reader([&] { received = p.read_until_eof(); });
    CHECK(w.wait_drained(std::chrono::seconds(10)));
    CHECK(w.drained());
    // The thread says so through fd(): readable until on_ready() resets it.
    pollfd pfd{w.fd(), POLLIN, 0};
    CHECK(::poll(&pfd, 1, 0) == 1);
    w.on_ready();
    pfd.revents = 0;
    CHECK(::poll(&pfd, 1, 0) == 0);
    p.close_write();
    reader.join();
    CHECK(received.size() == expected.size());
    CHECK(received == expected);
  }
}

TEST_CASE("background writer reports a closed pipe when next flushed or waited for") {
  ignore_sigpipe guard;
  test_pipe p;
  p.close_read();
  mtask::background_writer w(p.write_fd);
  w.write("lost");
  w.flush();
  CHECK_THROWS_WITH_AS((void)w.wait_drained(std::chrono::seconds(10)), "cannot write to stdout: Broken pipe",
                       mtask::error);
  w.write("more");
  CHECK_THROWS_WITH_AS(w.flush(), "cannot write to stdout: Broken pipe", mtask::error);
}

TEST_CASE("background writer going away while its thread is stuck writing leaves that thread whole") {
  // The batch being written when the writer is destroyed still reaches the reader, from a thread
  // that was detached, not joined (under ASan a freed buffer or mutex would show here).
  test_pipe p;
  REQUIRE(::fcntl(p.read_fd, F_SETFL, 0) == 0);
  const std::string batch(1u << 20, 'x');
  {
    auto w = std::make_unique<mtask::background_writer>(p.write_fd);
    w->write(batch);
    w->flush();                              // handed over whole: the thread is now stuck in write()
    CHECK(w->backlog() == batch.size() + 1); // with the newline the output rule adds
  }                                          // destroyed while stuck
  CHECK(p.read_exactly(batch.size() + 1) == batch + "\n");
}
