// mtask's command line: the ventilator's, worker's and sink's flags in one app, each bound to
// the options of the role that owns it, plus the flags they share, given once and copied to all.
#include "launch/launch_flags.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "exec/replacement.hpp"
#include "mtask/error.hpp"
#include "sink/sink_flags.hpp"
#include "ventilator/ventilator_flags.hpp"
#include "worker/worker_flags.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>

namespace mtask {
namespace {

// How the worker takes tasks made of argument lists: with several lists, a task is their arguments
// joined by arg_separator, so --colsep cuts it back into {1}, {2}...; a command without a
// replacement string gets them appended as arguments, as parallel appends them (mtask's rule that
// such a command reads the task on stdin is parallel --pipe's; ::: is parallel's syntax for
// arguments, and `mtask -- gzip ::: *.txt` compressing stdin would surprise everyone).
void use_arg_lists(const CLI::App& app, launch_options& opts) {
  std::size_t lists = 0;
  for (const auto& g : opts.arg_groups) lists += g.from_file ? g.words.size() : 1;
  auto& w = opts.worker;
  const bool builtin = app.get_option("--builtin")->count() > 0;
  if (lists > 1) {
    if (app.get_option("--colsep")->count() > 0)
      throw usage_error("--colsep cannot be used with several ::: or :::: groups (they are {1}, {2}...)");
    if (builtin || w.persistent)
      throw usage_error(fmt::format("several ::: or :::: groups need a command with {{1}} {{2}}..., not {}",
                                    builtin ? "--builtin" : "--persistent"));
    w.colsep = std::string(1, arg_separator);
  }
  if (builtin || w.persistent || w.command.empty()) return;
  if (std::none_of(w.command.begin(), w.command.end(), [](const auto& a) { return has_replacement_string(a); }))
    w.command.emplace_back("{}");
}

void add_remote_flags(CLI::App& app, remote_options& r) {
  auto* listen = app.add_option(
      "--listen", r.listen,
      "Also serve workers on other hosts: bind the ventilator and the sink on TCP at ADDR (an address of this "
      "machine they reach; PORT for the ventilator and PORT+1 for the sink, or two free ports), with fresh CURVE "
      "keys for this job, and print on stderr the command line that joins a worker (its key must be in --allow)");
  listen->type_name("ADDR[:PORT]");
  app.add_option("--allow", r.allow,
                 "With --listen or --ssh: folder of public certificates (*.key, from mtask-keygen) of the workers "
                 "started by hand that may join")
      ->type_name("DIR");
  app.add_flag("--insecure", r.insecure, "With --listen or --ssh: no keys, plaintext (only on a network you trust)");
  app.add_option("-S,--ssh,--sshlogin", r.ssh,
                 "Also run a worker on each host over ssh, as parallel -S: [N/][ssh options ][user@]host (N: its -j; "
                 "':' is this machine, which otherwise runs none), comma-separated or repeated. Each host gets a key "
                 "of its own, sent over ssh; its worker ends with the job, or when ssh's connection does")
      ->type_name("LOGINS")
      ->expected(1) // one value a use: a command given without -- is not more logins
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--slf,--sshloginfile", r.sshloginfiles,
                 "Hosts for --ssh from FILE, one sshlogin a line ('#' comments)")
      ->type_name("FILE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--ssh-command", r.ssh_command, "The ssh program and its options, split at spaces (\"ssh -i KEY\")")
      ->capture_default_str();
  app.add_option("--remote-worker", r.remote_worker, "The mtask-worker program on the ssh hosts")
      ->capture_default_str();
}

void check_remote_flags(const remote_options& r) {
  if (r.insecure && !r.any()) throw usage_error("--insecure needs --listen or --ssh");
  if (!r.allow.empty() && !r.any()) throw usage_error("--allow needs --listen or --ssh");
  if (r.insecure && !r.allow.empty()) throw usage_error("--allow and --insecure do not go together");
  if (!r.listen.empty() && r.ssh.empty() && r.sshloginfiles.empty() && r.allow.empty() && !r.insecure)
    throw usage_error(
        "--listen: no worker of another host could join: give --allow DIR (their public keys), --ssh, or --insecure");
}

// Returns: the options `app` has beyond `before`.
std::vector<CLI::Option*> added_since(CLI::App& app, std::size_t before) {
  auto all = app.get_options();
  return {all.begin() + static_cast<std::ptrdiff_t>(before), all.end()};
}

// The flags of `given` as they were typed (--name=value; a plain flag once per use), for a worker
// started elsewhere. -j, --colsep and the command are left to the caller: a host reads -j against
// its own cores, and the command and --colsep are the parsed ones (::: lists change both).
std::vector<std::string> as_given(const std::vector<CLI::Option*>& given) {
  std::vector<std::string> argv;
  for (const auto* o : given) {
    const auto name = o->get_name();
    if (o->count() == 0 || name == "--jobs" || name == "--colsep" || name.rfind("--", 0) != 0) continue;
    for (const auto& value : o->results()) {
      const bool bare = o->get_expected_min() == 0 && (value.empty() || value == "true" || value == "1");
      argv.push_back(bare ? name : name + "=" + value);
    }
  }
  return argv;
}

} // namespace

int parse_launch_flags(int argc, char** argv, launch_options& opts) {
  CLI::App app(
      "Runs a whole job on this machine: a ventilator, a sink and -j local worker slots, wired over\n"
      "ipc:// in a private folder. Tasks come from stdin (or --input, --range), results go to stdout.\n"
      "With --ssh HOSTS (or --listen ADDR), workers on other hosts join too, over TCP and CURVE.\n"
      "Run as: mtask [OPTIONS] -- CMD [ARG...]   Each task runs CMD (no shell, as parallel -q). With\n"
      "        GNU parallel's replacement strings in CMD or an ARG ({} {.} {/} {//} {/.} {#} {%}, with\n"
      "        --colsep {1} {2} {-1} {1.}...), the task goes into the arguments; without any, the task\n"
      "        (with its newline) is written to CMD's stdin, as with parallel --pipe.\n"
      "    or: mtask [OPTIONS] -- CMD [ARG...] ::: A B... [::: 1 2... | :::: FILE...]...   Argument lists,\n"
      "        as GNU parallel's, instead of stdin: the tasks are their cross product (the first group\n"
      "        varies slowest), {1} {2}... the groups' arguments, {} all of them; a CMD without a\n"
      "        replacement string gets them appended, as in parallel.\n"
      "    or: mtask [OPTIONS] --builtin echo|sleep\n"
      "Exits as the sink does: 0, 3 if some tasks failed, 1 on failure; 128+N when stopped by signal N.",
      program_name(argc > 0 ? argv[0] : nullptr, "mtask"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  common_options common;
  add_process_flags(app, common,
                    "Give up (exit 1) after this long without progress (no worker, sink or ventilator); "
                    "0: never");
  auto for_workers = added_since(app, 0);
  ventilator_flags vent_flags;
  vent_flags.add(app, opts.ventilator);
  const auto worker_first = app.get_options().size();
  worker_flags work_flags;
  work_flags.add(app, opts.worker, {.once = false, .command = true});
  const auto worker_own = added_since(app, worker_first);
  for_workers.insert(for_workers.end(), worker_own.begin(), worker_own.end());
  sink_flags collect_flags;
  collect_flags.add(app, opts.sink, true);
  add_remote_flags(app, opts.remote);

  log::set_program(app.get_name());
  const int rc = parse_args(
      app, argc, argv,
      [&] {
        check_process_flags(common);
        opts.arg_groups = take_arg_groups(opts.worker.command);
        vent_flags.set_arg_groups(opts.arg_groups);
        if (!opts.arg_groups.empty()) use_arg_lists(app, opts);
        vent_flags.finish();
        work_flags.finish();
        collect_flags.finish();
        check_remote_flags(opts.remote);
      },
      &opts.worker.command);
  if (rc >= 0) return rc;
  if (const auto* j = app.get_option("--jobs"); j->count() > 0) opts.remote.jobs = j->results().back();
  opts.remote.worker_flags = as_given(for_workers);
  apply_log_flags(common);
  opts.ventilator.common = common;
  opts.worker.common = common;
  opts.sink.common = common;
  opts.worker.once = true; // the worker leaves with the job
  return -1;
}

} // namespace mtask
