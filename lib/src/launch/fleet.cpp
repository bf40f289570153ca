// What to start where for an mtask job that takes workers from other hosts.
#include "launch/fleet.hpp"

#include "common/log.hpp"
#include "exec/replacement.hpp"
#include "launch/job_access.hpp"
#include "launch/ssh_logins.hpp"
#include "mtask/error.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace mtask {
namespace {

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "local";
  return name;
}

struct worker_line {
  std::vector<std::string> head; // program, --once, endpoints, server keys
  std::vector<std::string> tail; // the worker's flags, --colsep, -- command
};

} // namespace

fleet_plan plan_fleet(launch_options& opts, const std::string& private_path) {
  fleet_plan plan;
  auto& r = opts.remote;
  if (!r.any()) return plan;
  const auto logins = collect_ssh_logins(r.ssh, r.sshloginfiles);
  if (logins.empty() && r.listen.empty()) throw usage_error("--sshloginfile: no sshlogin in the file(s)");
  const auto local = std::find_if(logins.begin(), logins.end(), [](const auto& l) { return l.local(); });
  plan.local_worker = logins.empty() || local != logins.end();
  if (local != logins.end() && local->slots) opts.worker.slots = std::stoi(*local->slots);
  const auto first_remote = std::find_if(logins.begin(), logins.end(), [](const auto& l) { return !l.local(); });
  if (r.listen.empty() && first_remote == logins.end()) {
    // Only ':': a job on this machine, over ipc://, where keys mean nothing.
    if (r.insecure || !r.allow.empty())
      throw usage_error("--insecure and --allow need a host to serve: --ssh lists only ':' (this machine)");
    return plan;
  }

  // The address every worker is told: --listen's, or ours on the way to the first ssh host.
  std::optional<int> port;
  std::string address;
  if (!r.listen.empty()) {
    const auto spec = parse_listen(r.listen);
    address = resolve_ipv4(spec.host);
    port = spec.port;
  } else {
    try {
      address = local_address_toward(first_remote->host());
    } catch (const error& e) {
      throw error(fmt::format("{}: give --listen ADDR, the address the hosts reach this machine at", e.what()));
    }
  }
  if (address.rfind("127.", 0) == 0) {
    // /etc/hosts often maps this machine's name to 127.0.1.1: its workers would be told to
    // connect to themselves, and fail a minute later with no hint why.
    log::warn(
        "workers will be told to connect to {}, which only this machine reaches: give --listen the "
        "address of this machine that the other hosts reach",
        address);
  }
  const auto ep = pick_endpoints(address, port);
  plan.serving = true;
  for (common_options* c : {&opts.ventilator.common, &opts.worker.common, &opts.sink.common}) {
    c->ventilator = ep.ventilator;
    c->sink = ep.sink;
    c->sink_given = true;
  }

  worker_line line{.head = {r.remote_worker, "--once", "--ventilator", ep.ventilator, "--sink", ep.sink}, .tail = {}};
  std::optional<job_keys> keys;
  if (r.insecure) {
    opts.ventilator.common.insecure = true;
    opts.sink.common.insecure = true;
  } else {
    keys.emplace(private_path + "/keys");
    if (!r.allow.empty()) keys->admit(r.allow);
    const auto& vent_key = keys->ventilator().public_key;
    const auto& sink_key = keys->sink().public_key;
    auto& v = opts.ventilator.common;
    v.key = keys->ventilator_secret_path();
    v.sink_key = sink_key;
    v.allow = keys->allow_dir();
    auto& s = opts.sink.common;
    s.key = keys->sink_secret_path();
    s.ventilator_key = vent_key;
    s.allow = keys->allow_dir();
    if (plan.local_worker) {
      auto& w = opts.worker.common;
      w.key = keys->add_local_worker(this_host());
      w.ventilator_key = vent_key;
      w.sink_key = sink_key;
    }
    line.head.insert(line.head.end(), {"--ventilator-key", vent_key, "--sink-key", sink_key});
  }
  line.tail = r.worker_flags;
  if (opts.worker.colsep) line.tail.insert(line.tail.end(), {"--colsep", *opts.worker.colsep});
  if (!opts.worker.command.empty()) {
    line.tail.emplace_back("--");
    line.tail.insert(line.tail.end(), opts.worker.command.begin(), opts.worker.command.end());
  }

  const auto ssh_command = split_words(r.ssh_command);
  if (ssh_command.empty()) throw usage_error("--ssh-command is empty");
  for (const auto& login : logins) {
    if (login.local()) continue;
    auto argv = line.head;
    const auto jobs = login.slots ? *login.slots : r.jobs;
    if (!jobs.empty()) argv.insert(argv.end(), {"-j", jobs});
    argv.insert(argv.end(), line.tail.begin(), line.tail.end());
    std::optional<std::string> secret;
    if (keys) secret = format_certificate(keys->add_worker(login.host()));
    plan.remotes.push_back({.host = login.text(), .command = plan_remote_worker(ssh_command, login, argv, secret)});
  }

  // Printed only when a worker started by hand could join: its key in --allow, or no keys at all.
  if (!r.listen.empty() && (r.insecure || !r.allow.empty())) {
    for (const auto& w : line.head) plan.join_line += shell_quote(w) + " ";
    if (keys) plan.join_line += "--key YOUR.key_secret ";
    plan.join_line += "[-j N] ";
    for (const auto& w : line.tail) plan.join_line += shell_quote(w) + " ";
    plan.join_line.pop_back();
  }
  return plan;
}

} // namespace mtask
