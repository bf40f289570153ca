// mtask-top --ventilator EP: asks the ventilator for a status_report every --interval-ms and shows
// it, full-screen on a terminal, as plain blocks of lines otherwise; --once prints one and exits.
#include "top/top_main.hpp"

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"
#include "mtask/options.hpp"
#include "security/certificate.hpp"
#include "top/top_view.hpp"
#include "transport/curve.hpp"
#include "transport/socket.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

namespace mtask {
namespace {

struct top_options {
  common_options common;
  bool once = false;
  std::int64_t interval_ms = 1000;
  std::int64_t timeout_ms = 5000;
};

// Sends a request and waits for the report (answers to earlier requests are skipped).
// Returns: the report, or nothing when none came within `timeout` or the ventilator refused our
// handshake (`watch` has said why).
std::optional<wire::status_report> ask(zmq::socket_t& s, handshake_watch& watch, millis timeout) {
  const auto request = wire::encode(wire::status_request{});
  const auto deadline = clock::now() + timeout;
  bool sent = false;
  while (clock::now() < deadline && stop_signal() == 0) {
    watch.check();
    if (watch.rejected()) return std::nullopt;
    if (!sent) sent = try_send(s, request);
    std::vector<zmq::pollitem_t> items{{s.handle(), 0, static_cast<short>(sent ? ZMQ_POLLIN : ZMQ_POLLOUT), 0}};
    // Never negative: zmq_poll takes -1 as "for ever".
    poll_items(items, std::clamp(std::chrono::ceil<millis>(deadline - clock::now()), millis(0), millis(100)));
    while (sent) {
      auto in = try_receive(s, false);
      if (!in) break;
      try {
        auto m = wire::decode(body_of(*in));
        if (auto* r = std::get_if<wire::status_report>(&m)) return std::move(*r);
      } catch (const protocol_error& e) {
        log::info("dropped a frame: {}", e.what());
      }
    }
  }
  return std::nullopt;
}

int run_top(const top_options& o) {
  std::optional<curve_keys> curve;
  if (!o.common.key.empty()) {
    if (o.common.ventilator_key.empty()) throw usage_error("--key needs --ventilator-key (the server it asks)");
    const auto own = load_certificate(o.common.key, true);
    curve = curve_keys{.public_key = own.public_key,
                       .secret_key = own.secret_key,
                       .server_key = load_certificate(o.common.ventilator_key, false).public_key};
  } else if (!o.common.ventilator_key.empty()) {
    throw usage_error("--ventilator-key needs --key (this process's own secret certificate)");
  }
  zmq::context_t ctx;
  auto s = client_socket(ctx, zmq::socket_type::dealer, policy_of(o.common, curve));
  // Says why a ventilator will not have us (a key not on its --allow, CURVE on one side only).
  handshake_watch watch(ctx, s, "ventilator", "--ventilator-key", curve ? curve->public_key : "");
  connect_to(s, o.common.ventilator);
  const bool terminal = ::isatty(STDOUT_FILENO) == 1 && !o.once;
  bool seen_complete = false; // a report said every task is acknowledged
  while (stop_signal() == 0) {
    const auto started = clock::now();
    auto report = ask(s, watch, millis(o.timeout_ms));
    if (watch.rejected()) return exit_failure; // the watch has named the refusal
    if (stop_signal() != 0) break;
    if (!report) {
      // A ventilator whose job was complete has left, not failed. Between two snapshots a job can
      // end and its ventilator leave unseen: that is said, not called a success.
      if (seen_complete) {
        log::warn("the job is complete: its ventilator at '{}' has left", o.common.ventilator);
        return exit_ok;
      }
      log::error("no answer from the ventilator at '{}' within {} ms (its job ended, or it is gone)",
                 o.common.ventilator, o.timeout_ms);
      return exit_failure;
    }
    seen_complete = report->phase == "farewell" ||
                    (report->total >= 0 && report->acknowledged == static_cast<std::uint64_t>(report->total));
    const auto text = render_status(*report, o.common.ventilator);
    // A terminal: home, clear, draw (a full-screen view); otherwise blocks of lines, a blank between.
    std::fputs(terminal ? ("\x1b[H\x1b[2J" + text).c_str() : text.c_str(), stdout);
    if (!terminal && !o.once) std::fputc('\n', stdout);
    std::fflush(stdout);
    if (o.once || report->phase == "finished") return exit_ok;
    // Waits out the interval, waking at once for a signal (poll on nothing).
    std::vector<zmq::pollitem_t> none;
    while (stop_signal() == 0 && clock::now() - started < millis(o.interval_ms))
      poll_items(none,
                 std::max(millis(0), std::chrono::ceil<millis>(millis(o.interval_ms) - (clock::now() - started))));
  }
  return 128 + stop_signal();
}

} // namespace

int top_main(int argc, char** argv) {
  const auto program = program_name(argc > 0 ? argv[0] : nullptr, "mtask-top");
  log::set_program(program);
  CLI::App app(
      "Shows a running job from its ventilator: one row per worker (slots, busy, tasks done, rate, "
      "last seen) and the job's totals, refreshed every --interval-ms; full-screen on a terminal, "
      "plain blocks of lines otherwise.",
      program);
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  top_options o;
  app.add_option("--ventilator", o.common.ventilator, "The ventilator's endpoint (tcp://HOST:PORT or ipc://PATH)")
      ->capture_default_str();
  app.add_flag("--once", o.once, "Print one snapshot and exit (for scripts)");
  app.add_option("--interval-ms", o.interval_ms, "Time between snapshots")
      ->capture_default_str()
      ->check(CLI::Range(100, 3600000));
  app.add_option("--timeout-ms", o.timeout_ms, "Give up (exit 1) when the ventilator does not answer within this")
      ->capture_default_str()
      ->check(CLI::Range(100, 3600000));
  app.add_option("--key", o.common.key, "This process's own secret certificate, when the ventilator runs with --key");
  app.add_option("--ventilator-key", o.common.ventilator_key, "The ventilator's public certificate");
  app.add_flag("-v,--verbose", o.common.verbose, "More detail on stderr");
  app.add_flag("-q,--quiet", o.common.quiet, "Only errors on stderr");
  const int rc = parse_args(app, argc, argv, nullptr);
  if (rc >= 0) return rc;
  apply_log_flags(o.common);
  return run_role([&] { return run_top(o); });
}

} // namespace mtask
